using System.Net;
using UserOverlay.Membership.Wire;

namespace UserOverlay.Membership;

/// <summary>Parses seed addresses as serf and Docker take them.</summary>
public static class SeedAddress
{
    /// <summary>
    /// Resolves <c>host</c>, <c>host:port</c>, <c>a.b.c.d[:port]</c> or <c>[v6][:port]</c> to endpoints;
    /// <paramref name="defaultPort"/> (7946) when no port is given. Host names go through DNS.
    /// </summary>
    public static async Task<IReadOnlyList<IPEndPoint>> ResolveAsync(string seed, int defaultPort = ProtocolConstants.DefaultPort, CancellationToken cancellationToken = default)
    {
        var (host, port) = Split(seed.Trim(), defaultPort);
        if (IPAddress.TryParse(host, out var ip)) return [new IPEndPoint(ip, port)];
        var addrs = await Dns.GetHostAddressesAsync(host, cancellationToken).ConfigureAwait(false);
        return addrs.Select(a => new IPEndPoint(a, port)).ToList();
    }

    /// <summary>Splits a seed into host and port (no resolution).</summary>
    public static (string Host, int Port) Split(string seed, int defaultPort = ProtocolConstants.DefaultPort)
    {
        if (string.IsNullOrEmpty(seed)) throw new FormatException("empty seed address");
        if (seed.StartsWith('['))
        {
            int close = seed.IndexOf(']');
            if (close < 0) throw new FormatException($"bad seed address '{seed}'");
            string h = seed[1..close];
            string rest = seed[(close + 1)..];
            if (rest.Length == 0) return (h, defaultPort);
            if (rest[0] != ':' || !int.TryParse(rest[1..], out int p6) || p6 is < 1 or > 65535) throw new FormatException($"bad port in '{seed}'");
            return (h, p6);
        }
        int colon = seed.LastIndexOf(':');
        if (colon < 0 || seed.IndexOf(':') != colon) return (seed, defaultPort); // bare host or bare IPv6
        if (!int.TryParse(seed[(colon + 1)..], out int port) || port is < 1 or > 65535) throw new FormatException($"bad port in '{seed}'");
        return (seed[..colon], port);
    }
}
