using System.CommandLine;
using System.Text;
using System.Text.Json;
using UserOverlay.Cli.Client;
using UserOverlay.Cli.Config;
using UserOverlay.Cli.Daemon;
using UserOverlay.Crypto;
using UserOverlay.Router;

namespace UserOverlay.Cli.Commands;

/// <summary>
/// <c>useroverlay sa --config FILE [--json]</c>: the ESP SAs this host uses with its peers, derived from the
/// configuration alone (like <c>ip xfrm state</c>), so a person can decrypt a capture in Wireshark/tshark;
/// <c>useroverlay sa [-H NAME|SOCKET]</c> asks the running router instead (it also knows peers learned by gossip).
/// A debugging command: it prints secret keys, and says so.
/// </summary>
internal static class SaCommand
{
    public const string Warning = "These are the SECRET keys of this host's encrypted networks: anyone who has them can read and forge its overlay traffic. Use them to debug, keep them off shared logs.";

    public static Command Create()
    {
        var config = new Option<FileInfo?>("--config", "-c") { Description = "Derive the SAs from this configuration file (static peers)." };
        var json = new Option<bool>("--json") { Description = "Print JSON (for scripts)." };
        var cmd = new Command("sa", "Print the ESP security associations (source, destination, SPI, algorithm, key and salt, epoch) — prints secrets.") { config, json };
        var host = HostOption.AddTo(cmd, legacyName: true);
        cmd.SetAction(p => ClientSession.Run(p, host, s =>
        {
            if (p.GetValue(config) is not null && host.Value(p) is not null)
                throw new UsageException("give --config FILE (the SAs a configuration derives) or -H ROUTER (those a running router holds), not both");
            var sas = p.GetValue(config) is { } configFile ? FromConfig(configFile)
                : s.Get("v1/sa", ControlJson.Default.SaResponse).Sas;
            if (sas is null)
            {
                s.Error.WriteLine($"useroverlay: {p.GetValue(config)!.Name} has no encrypted network, so there are no SAs");
                return ExitCodes.Usage;
            }
            s.Error.WriteLine("WARNING: " + Warning);
            s.Out.Write(p.GetValue(json) ? JsonSerializer.Serialize(new SaResponse(Warning, sas), ControlJson.Default.SaResponse) + "\n" : Format(sas));
            return ExitCodes.Ok;
        }));
        return cmd;
    }

    /// <summary>The SAs <paramref name="configFile"/> implies for its static peers; null without encrypted networks.</summary>
    private static IReadOnlyList<EspSaDescription>? FromConfig(FileInfo configFile)
    {
        var c = ConfigLoader.Load(configFile.FullName, checkNamespaces: false);
        if (c.Router.Encryption is not { } enc) return null;
        var peers = c.Router.Peers.Concat(c.Router.StaticFdb.Select(f => f.Vtep)).Select(p => p.IPAddress).Distinct();
        var keys = c.Router.Networks.Where(n => n.Encrypted)
            .Select(n => enc.Keys.TryGetKey(n.Name, out var k) ? k : null).OfType<NetworkKey>();
        return EspSaDescription.Enumerate(c.Router.Underlay.IPAddress, peers, keys, DateTimeOffset.UtcNow, enc.Esp);
    }

    /// <summary>`ip xfrm state`-like blocks, then the tshark options that decrypt a capture with these SAs.</summary>
    public static string Format(IReadOnlyList<EspSaDescription> sas)
    {
        var b = new StringBuilder();
        foreach (var sa in sas)
        {
            b.AppendLine($"# network {sa.KeyId}, {sa.Direction.ToString().ToLowerInvariant()}, epoch {sa.Epoch} ({sa.EpochStart:u} – {sa.EpochEnd:u}){(sa.Current ? ", current" : "")}");
            b.AppendLine(sa.ToXfrmString());
        }
        b.AppendLine();
        b.AppendLine("# Decrypt a capture with tshark (check esp.icv_good):");
        b.Append("tshark -r CAPTURE.pcap -o esp.enable_encryption_decode:TRUE -o esp.enable_authentication_check:TRUE");
        foreach (var sa in sas) b.Append($" \\\n  -o 'uat:esp_sa:{sa.ToWiresharkUat()}'");
        b.AppendLine();
        return b.ToString();
    }
}
