using System.CommandLine;
using System.Globalization;
using System.Text;
using UserOverlay.Cli.Client;
using UserOverlay.Cli.Daemon;
using UserOverlay.Router;

namespace UserOverlay.Cli.Commands;

/// <summary><c>useroverlay status [-H NAME|SOCKET] [--json]</c>: what a running router is doing.</summary>
internal static class StatusCommand
{
    public static Command Create()
    {
        var json = new Option<bool>("--json") { Description = "Print the raw JSON (for scripts)." };
        var cmd = new Command("status", "Show a running router's networks, endpoints, FDB, peers, counters and drops.") { json };
        var host = HostOption.AddTo(cmd, legacyName: true);
        cmd.SetAction(p => ClientSession.Run(p, host, s =>
        {
            string body = s.Get("v1/status");
            s.Out.Write(p.GetValue(json) ? body + "\n" : Format(ControlJson.Read(body, ControlJson.Default.RouterStatus)));
            return ExitCodes.Ok;
        }));
        return cmd;
    }

    /// <summary>Human-readable rendering of a status.</summary>
    public static string Format(RouterStatus s)
    {
        var b = new StringBuilder();
        var ci = CultureInfo.InvariantCulture;
        b.AppendLine(ci, $"VTEP {s.Underlay}   up {s.UptimeSeconds:0.#} s   learning {(s.Learning ? "on" : "off")} (aging {s.FdbAgingSeconds:0} s)   queues {s.Queues}   TAP I/O {s.TapIo}");
        b.AppendLine(ci, $"Peers: {(s.Peers.Count == 0 ? "(none)" : string.Join(", ", s.Peers))}");
        if (s.PeerDetails is { Count: > 0 } heard)
            b.AppendLine(ci, $"Last heard: {string.Join(", ", heard.Select(p => p.LastHeardSeconds is double age ? string.Create(ci, $"{p.Vtep} {age:0.0} s ago") : $"{p.Vtep} never"))}");
        foreach (var n in s.Networks)
        {
            b.AppendLine();
            b.AppendLine(ci, $"Network {n.Name}   VNI {n.Vni}   MTU {n.Mtu}   subnet {n.Subnet}");
            b.AppendLine("  Endpoints:");
            if (n.Endpoints.Count == 0) b.AppendLine("    (none on this host)");
            foreach (var e in n.Endpoints) b.AppendLine(ci, $"    {e.Netns + "/" + e.Interface,-24} {e.Address,-20} {e.Mac}");
            b.AppendLine("  FDB:");
            b.AppendLine(ci, $"    {"MAC",-19} {"DESTINATION",-28} {"SOURCE",-8} AGE");
            foreach (var e in n.Fdb)
                b.AppendLine(ci, $"    {e.Mac,-19} {e.Destination,-28} {e.Source,-8} {(e.Source == "learned" ? e.AgeSeconds.ToString("0.0", ci) + " s" : "-")}");
            if (n.Neighbors.Count > 0)
            {
                b.AppendLine("  Neighbours (proxy ARP):");
                foreach (var e in n.Neighbors) b.AppendLine(ci, $"    {e.Address,-16} {e.Mac,-19} {e.Source}");
            }
            var c = n.Counters;
            b.AppendLine(ci, $"  Counters: tx {c.TxFrames} frames ({Bytes(c.TxBytes)}) → {c.EncapsulatedDatagrams} VXLAN datagrams; rx {c.RxFrames} frames ({Bytes(c.RxBytes)}); delivered {c.DeliveredFrames}; flooded {c.FloodedFrames}; proxy ARP {c.ProxyArpReplies}");
            b.AppendLine("  Drops: " + Drops(c.Drops));
        }
        b.AppendLine();
        b.AppendLine("Router-wide drops: " + Drops(s.Drops));
        return b.ToString();
    }

    private static string Drops(IReadOnlyDictionary<string, long> d)
    {
        var nonzero = d.Where(kv => kv.Value > 0).Select(kv => $"{kv.Key} {kv.Value}").ToList();
        return nonzero.Count == 0 ? "none" : string.Join(", ", nonzero);
    }

    private static string Bytes(long n) => n switch
    {
        < 10_000 => $"{n} B",
        < 10_000_000 => $"{n / 1000.0:0.#} kB",
        _ => $"{n / 1e6:0.#} MB",
    };
}
