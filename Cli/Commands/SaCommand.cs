using System.CommandLine;
using System.Text;
using System.Text.Json;
using UserOverlay.Cli.Config;
using UserOverlay.Cli.Daemon;
using UserOverlay.Crypto;
using UserOverlay.Router;

namespace UserOverlay.Cli.Commands;

/// <summary>
/// <c>useroverlay sa --config FILE [--json]</c>: the ESP SAs this host uses with its peers, derived from the
/// configuration alone (like <c>ip xfrm state</c>), so a person can decrypt a capture in Wireshark/tshark;
/// <c>useroverlay sa --name NAME</c> asks the running router instead (it also knows peers learned by gossip).
/// A debugging command: it prints secret keys, and says so.
/// </summary>
internal static class SaCommand
{
    public const string Warning = "These are the SECRET keys of this host's encrypted networks: anyone who has them can read and forge its overlay traffic. Use them to debug, keep them off shared logs.";

    public static Command Create()
    {
        var config = new Option<FileInfo?>("--config", "-c") { Description = "Derive the SAs from this configuration file (static peers)." };
        var name = new Option<string?>("--name", "-n") { Description = "Ask this running router for the SAs it holds." };
        var json = new Option<bool>("--json") { Description = "Print JSON (for scripts)." };
        var cmd = new Command("sa", "Print the ESP security associations (source, destination, SPI, algorithm, key and salt, epoch) — prints secrets.") { config, name, json };
        cmd.SetAction(p => Run(p.GetValue(config), p.GetValue(name), p.GetValue(json)));
        return cmd;
    }

    private static int Run(FileInfo? configFile, string? name, bool json)
    {
        try
        {
            IReadOnlyList<EspSaDescription> sas;
            if (configFile is not null)
            {
                var c = ConfigLoader.Load(configFile.FullName, checkNamespaces: false);
                if (c.Router.Encryption is not { } enc)
                {
                    Console.Error.WriteLine($"useroverlay: {configFile.Name} has no encrypted network, so there are no SAs");
                    return ExitCodes.Usage;
                }
                var peers = c.Router.Peers.Concat(c.Router.StaticFdb.Select(f => f.Vtep)).Select(p => p.IPAddress).Distinct();
                var keys = c.Router.Networks.Where(n => n.Encrypted)
                    .Select(n => enc.Keys.TryGetKey(n.Name, out var k) ? k : null).OfType<NetworkKey>();
                sas = EspSaDescription.Enumerate(c.Router.Underlay.IPAddress, peers, keys, DateTimeOffset.UtcNow, enc.Esp);
            }
            else
            {
                using var client = new ControlClient(ControlClient.Resolve(name));
                string body = client.GetAsync("v1/sa").GetAwaiter().GetResult();
                sas = ControlJson.Read(body, ControlJson.Default.SaResponse).Sas;
            }
            Console.Error.WriteLine("WARNING: " + Warning);
            if (json)
            {
                Console.WriteLine(JsonSerializer.Serialize(new SaResponse(Warning, sas), ControlJson.Default.SaResponse));
                return ExitCodes.Ok;
            }
            Console.Write(Format(sas));
            return ExitCodes.Ok;
        }
        catch (Exception e)
        {
            return ExitCodes.Report(e);
        }
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
