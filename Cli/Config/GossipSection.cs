// The `gossip:` section of a host's configuration: with it the router learns its FDB, proxy-ARP
// table and flood lists from the replicated endpoint table (Membership/) instead of static peers.
//
//   gossip:
//     bind: 192.0.2.1:7946       # address[:port] for gossip (UDP + TCP); port default 7946; required
//     join: [192.0.2.2]          # seeds, address[:port] (port default 7946); empty on the first host
//     key: <base64>              # optional: 16/24/32-byte AES key, as `serf agent -encrypt` takes it
//     key_file: gossip.key       # … or a file holding it (one base64 key, or serf's keyring JSON array)
//     name: host1                # node name, unique in the cluster (default: router name + bind address)
//     profile: lan               # lan (default), wan or local: memberlist's timing presets
//     probe_interval: 1s         # optional timing overrides on top of the profile
//     suspicion_mult: 4
//     push_pull_interval: 30s
//     reconnect_interval: 30s

using System.Net;
using System.Text.Json;
using UserOverlay.Membership;
using UserOverlay.Membership.Security;
using UserOverlay.Router;
using YamlDotNet.RepresentationModel;

namespace UserOverlay.Cli.Config;

/// <summary>Parses the <c>gossip:</c> section with the loader's <see cref="YamlReader"/> (errors name file, line and field).</summary>
internal static class GossipSection
{
    private static readonly string[] Fields =
        ["bind", "join", "key", "key_file", "name", "profile", "probe_interval", "suspicion_mult", "push_pull_interval", "reconnect_interval"];

    /// <summary>
    /// Reads <c>gossip:</c> from the top-level fields; null when absent (static mode) or invalid
    /// (then errors were recorded in <paramref name="r"/>).
    /// </summary>
    /// <param name="r">The loader's reader.</param>
    /// <param name="top">Top-level fields.</param>
    /// <param name="file">The configuration file as given (relative key_file paths are relative to its directory).</param>
    /// <param name="underlayAddress">The data path's address (host order), to catch a port clash.</param>
    /// <param name="underlayPort">The data path's UDP port.</param>
    public static GossipConfig? Parse(YamlReader r, Dictionary<string, YamlNode> top, string file, uint underlayAddress, int underlayPort)
    {
        if (!top.TryGetValue("gossip", out var node)) return null;
        if (r.Mapping(node, "gossip") is not { } map) return null;
        var f = r.Fields(map, "gossip", Fields);
        int errors = r.Errors.Count;

        // bind
        IPEndPoint? bind = null;
        if (r.String(f, "bind", "gossip", required: true) is { } b)
        {
            if (TrySplit(b, out string host, out int port, out string err) && IPAddress.TryParse(host, out var ip))
                bind = new IPEndPoint(ip, port);
            else
                r.Error(f["bind"], "gossip.bind", err.Length > 0 ? err : $"'{b}' is not an IP address (optionally with :port; usually this host's underlay address, e.g. 192.0.2.1:7946)");
            if (bind is { AddressFamily: System.Net.Sockets.AddressFamily.InterNetwork } && bind.Port == underlayPort
                && VtepEndpoint.From(bind.Address, bind.Port).Address is var a && (a == underlayAddress || a == 0))
                r.Error(f["bind"], "gossip.bind", $"port {bind.Port} is the data path's VXLAN port on the same address; gossip needs its own (default {GossipConfig.DefaultPort})");
        }

        // join
        var join = new List<string>();
        if (f.TryGetValue("join", out var joinNode))
        {
            var items = r.Sequence(joinNode, "gossip.join");
            for (int i = 0; i < items.Count; i++)
            {
                string at = $"gossip.join[{i}]";
                if (r.Scalar(items[i], at) is not { } s) continue;
                if (!TrySplit(s, out string host, out int port, out string err))
                    r.Error(items[i], at, err);
                else if (!IPAddress.TryParse(host, out _) && Uri.CheckHostName(host) != UriHostNameType.Dns)
                    r.Error(items[i], at, $"'{s}' is not an address or host name (optionally with :port)");
                else
                    join.Add(host.Contains(':') ? $"[{host}]:{port}" : $"{host}:{port}");
            }
        }

        // key / key_file
        var keys = new List<byte[]>();
        bool hasKey = f.ContainsKey("key"), hasKeyFile = f.ContainsKey("key_file");
        if (hasKey && hasKeyFile)
            r.Error(f["key_file"], "gossip.key_file", "give either key or key_file, not both");
        else if (hasKey && r.String(f, "key", "gossip", required: true) is { } k)
        {
            if (DecodeKey(k, out var key, out string err)) keys.Add(key);
            else r.Error(f["key"], "gossip.key", err);
        }
        else if (hasKeyFile && r.String(f, "key_file", "gossip", required: true) is { } kf)
        {
            string path = Path.IsPathRooted(kf) ? kf : Path.Combine(Path.GetDirectoryName(Path.GetFullPath(file)) ?? ".", kf);
            if (ReadKeyFile(path, keys, out string err) is false) r.Error(f["key_file"], "gossip.key_file", err);
        }

        // name
        string? name = r.String(f, "name", "gossip", required: false);
        if (name is not null && (name.Length is 0 or > 128 || name.Any(c => char.IsWhiteSpace(c) || char.IsControl(c))))
        {
            r.Error(f["name"], "gossip.name", $"'{name}' is not a usable node name (1 to 128 characters, no spaces; unique in the cluster)");
            name = null;
        }

        // timings
        var profile = GossipProfile.Lan;
        if (r.String(f, "profile", "gossip", required: false) is { } ps)
        {
            switch (ps.Trim().ToLowerInvariant())
            {
                case "lan": profile = GossipProfile.Lan; break;
                case "wan": profile = GossipProfile.Wan; break;
                case "local": profile = GossipProfile.Local; break;
                default: r.Error(f["profile"], "gossip.profile", $"'{ps}' is not a profile (lan, wan or local)"); break;
            }
        }
        TimeSpan? probe = r.Duration(f, "probe_interval", "gossip");
        if (probe is { } pi && pi < TimeSpan.FromMilliseconds(50))
            r.Error(f["probe_interval"], "gossip.probe_interval", $"{pi.TotalMilliseconds} ms is too short (at least 50ms)");
        int? suspicion = (int?)r.Integer(f, "suspicion_mult", "gossip", false, 1, 100);
        TimeSpan? pushPull = r.Duration(f, "push_pull_interval", "gossip");
        TimeSpan? reconnect = r.Duration(f, "reconnect_interval", "gossip");

        if (r.Errors.Count > errors || bind is null) return null;
        return new GossipConfig
        {
            Bind = bind,
            Join = join,
            Keys = keys,
            Name = name,
            Profile = profile,
            ProbeInterval = probe,
            SuspicionMult = suspicion,
            PushPullInterval = pushPull,
            ReconnectInterval = reconnect,
        };
    }

    /// <summary>Splits <c>address[:port]</c> (IPv6 as <c>[addr]:port</c>); the port defaults to 7946.</summary>
    private static bool TrySplit(string s, out string host, out int port, out string error)
    {
        host = "";
        port = 0;
        error = "";
        try
        {
            (host, port) = SeedAddress.Split(s.Trim(), GossipConfig.DefaultPort);
            return true;
        }
        catch (FormatException)
        {
            error = $"'{s}': the port must be a number from 1 to 65535";
            return false;
        }
    }

    /// <summary>Decodes a base64 key as <c>serf agent -encrypt</c> takes it: 16, 24 or 32 bytes.</summary>
    internal static bool DecodeKey(string text, out byte[] key, out string error)
    {
        key = [];
        error = "";
        try { key = Convert.FromBase64String(text.Trim()); }
        catch (FormatException)
        {
            error = "is not valid base64 (generate a key with `serf keygen` or `head -c 32 /dev/urandom | base64`)";
            return false;
        }
        if (key.Length is not (16 or 24 or 32))
        {
            error = $"decodes to {key.Length} bytes; a gossip key is 16, 24 or 32 bytes (AES-128, -192 or -256)";
            return false;
        }
        return true;
    }

    /// <summary>Reads a key file: one base64 key, or serf's keyring file (a JSON array of base64 keys, the first is the primary).</summary>
    private static bool ReadKeyFile(string path, List<byte[]> keys, out string error)
    {
        string text;
        try { text = File.ReadAllText(path).Trim(); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            error = e is FileNotFoundException or DirectoryNotFoundException ? $"{path}: no such file" : $"{path}: {e.Message}";
            return false;
        }
        List<string> texts;
        if (text.StartsWith('['))
        {
            try { texts = JsonSerializer.Deserialize(text, KeyFileJson.Default.ListString) ?? []; }
            catch (JsonException)
            {
                error = $"{path}: not a JSON array of base64 keys (serf's keyring format) nor a single base64 key";
                return false;
            }
        }
        else texts = [text];
        if (texts.Count == 0)
        {
            error = $"{path}: holds no key";
            return false;
        }
        for (int i = 0; i < texts.Count; i++)
        {
            if (!DecodeKey(texts[i], out var key, out string err))
            {
                error = texts.Count == 1 ? $"{path}: the key {err}" : $"{path}: key {i + 1} {err}";
                return false;
            }
            keys.Add(key);
        }
        error = "";
        return true;
    }
}

[System.Text.Json.Serialization.JsonSerializable(typeof(List<string>))]
internal sealed partial class KeyFileJson : System.Text.Json.Serialization.JsonSerializerContext;
