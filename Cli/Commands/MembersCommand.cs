using System.CommandLine;
using System.Globalization;
using System.Text;
using UserOverlay.Cli.Client;
using UserOverlay.Cli.Daemon;
using UserOverlay.Control.Gossip;

namespace UserOverlay.Cli.Commands;

/// <summary><c>useroverlay members [-H NAME|SOCKET] [--json]</c>: the gossip cluster as a running router sees it.</summary>
internal static class MembersCommand
{
    public static Command Create()
    {
        var json = new Option<bool>("--json") { Description = "Print the raw JSON (for scripts)." };
        var cmd = new Command("members", "Show the gossip cluster's members (name, address, state, incarnation, protocol versions, VTEP, networks).") { json };
        var host = HostOption.AddTo(cmd, legacyName: true);
        cmd.SetAction(p => ClientSession.Run(p, host, s =>
        {
            string body = s.Get("v1/members");
            s.Out.Write(p.GetValue(json) ? body + "\n" : Format(ControlJson.Read(body, ControlJson.Default.MembersResponse)));
            return ExitCodes.Ok;
        }));
        return cmd;
    }

    /// <summary>Human-readable rendering: a header line and one row per member.</summary>
    public static string Format(MembersResponse r)
    {
        var ci = CultureInfo.InvariantCulture;
        var b = new StringBuilder();
        var counts = r.CountByState().Where(kv => kv.Value > 0).Select(kv => $"{kv.Value} {kv.Key}");
        b.AppendLine(ci, $"Node {r.Node} at {r.Address}   gossip {(r.Encrypted ? "encrypted" : "not encrypted")}   health {r.HealthScore}   members: {string.Join(", ", counts)}");
        if (!r.Joined)
            b.AppendLine(ci, $"Not joined yet: no seed has answered ({string.Join(", ", r.Seeds)}); still trying.");
        b.AppendLine();
        string[] head = ["NAME", "ADDRESS", "STATE", "INCARNATION", "PROTOCOL", "DELEGATE", "VTEP", "NETWORKS"];
        var rows = r.Members.Select(m => new[]
        {
            m.Local ? m.Name + " *" : m.Name,
            m.Address,
            m.State == "alive" ? m.State : $"{m.State} ({m.StateAgeSeconds.ToString("0", ci)} s)",
            m.Incarnation.ToString(ci),
            m.Protocol.ToString(),
            m.Delegate.ToString(),
            m.Vtep ?? "-",
            m.Networks.Count == 0 ? "-" : string.Join(",", m.Networks),
        }).ToList();
        b.Append(TextTable.Format(head, rows, "  "));
        b.AppendLine();
        b.AppendLine("(* this node; PROTOCOL and DELEGATE are memberlist versions: current [min,max])");
        return b.ToString();
    }
}
