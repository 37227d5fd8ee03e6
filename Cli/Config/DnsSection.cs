using System.Net;
using YamlDotNet.RepresentationModel;

namespace UserOverlay.Cli.Config;

/// <summary>
/// The <c>dns:</c> section: <c>upstream: [IP[:PORT], …]</c>, the resolvers that names which are not a network's are
/// forwarded to (default: the nameservers of /etc/resolv.conf as the daemon sees it), and <c>enabled</c> (default true:
/// every network with a gateway answers DNS there). <c>upstream: []</c> forwards nothing (unknown names get NXDOMAIN).
/// </summary>
public sealed record DnsConfig
{
    /// <summary>Whether the gateways answer DNS.</summary>
    public bool Enabled { get; init; } = true;

    /// <summary>The upstream resolvers given in the file, or null: read /etc/resolv.conf at start.</summary>
    public IReadOnlyList<IPEndPoint>? Upstream { get; init; }

    /// <summary>The nameservers of a resolv.conf text (IPv4 only; others are skipped), port 53.</summary>
    public static List<IPEndPoint> ParseResolvConf(string text)
    {
        var list = new List<IPEndPoint>();
        foreach (string raw in text.Split('\n'))
        {
            string line = raw.Trim();
            if (!line.StartsWith("nameserver", StringComparison.Ordinal)) continue;
            string[] parts = line.Split((char[])[' ', '\t'], StringSplitOptions.RemoveEmptyEntries);
            if (parts.Length >= 2 && IPAddress.TryParse(parts[1], out var ip) && ip.AddressFamily == System.Net.Sockets.AddressFamily.InterNetwork)
                list.Add(new IPEndPoint(ip, 53));
        }
        return list;
    }
}

internal static class DnsSection
{
    public static DnsConfig Parse(YamlReader r, Dictionary<string, YamlNode> top)
    {
        if (!top.TryGetValue("dns", out var node) || r.Mapping(node, "dns") is not { } map) return new DnsConfig();
        var f = r.Fields(map, "dns", "enabled", "upstream");
        bool enabled = r.Boolean(f, "enabled", "dns") ?? true;
        List<IPEndPoint>? upstream = null;
        if (f.TryGetValue("upstream", out var up))
        {
            upstream = [];
            var items = r.Sequence(up, "dns.upstream");
            for (int i = 0; i < items.Count; i++)
            {
                string at = $"dns.upstream[{i}]";
                if (r.Scalar(items[i], at) is not { } s) continue;
                if (IPEndPoint.TryParse(s, out var ep) && ep.AddressFamily == System.Net.Sockets.AddressFamily.InterNetwork)
                    upstream.Add(ep.Port == 0 ? new IPEndPoint(ep.Address, 53) : ep);
                else r.Error(items[i], at, $"'{s}' is not an IPv4 address or address:port (e.g. 192.0.2.53 or 192.0.2.53:5353)");
            }
        }
        return new DnsConfig { Enabled = enabled, Upstream = upstream };
    }
}
