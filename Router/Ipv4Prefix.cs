using System.Buffers.Binary;
using System.Globalization;
using System.Net;

namespace UserOverlay.Router;

/// <summary>An IPv4 prefix (CIDR), e.g. 198.18.0.0/24; the address is a host-order integer.</summary>
public readonly record struct Ipv4Prefix(uint Network, int Length)
{
    /// <summary>The netmask as a host-order integer.</summary>
    public uint Mask => Length == 0 ? 0 : uint.MaxValue << (32 - Length);

    /// <summary>True when <paramref name="address"/> (host order) lies inside the prefix.</summary>
    public bool Contains(uint address) => (address & Mask) == Network;

    /// <summary>Parses "198.18.0.0/24"; the host bits must be zero unless <paramref name="allowHostBits"/>.</summary>
    public static bool TryParse(string? s, out Ipv4Prefix prefix, out string error, bool allowHostBits = false)
    {
        prefix = default;
        error = "";
        if (string.IsNullOrWhiteSpace(s)) { error = "is empty (expected a CIDR such as 198.18.0.0/24)"; return false; }
        int slash = s.IndexOf('/');
        if (slash < 0) { error = $"'{s}' has no prefix length (expected a CIDR such as 198.18.0.0/24)"; return false; }
        if (!TryParseAddress(s[..slash], out uint addr)) { error = $"'{s}': '{s[..slash]}' is not an IPv4 address"; return false; }
        if (!int.TryParse(s.AsSpan(slash + 1), NumberStyles.None, CultureInfo.InvariantCulture, out int len) || len > 32)
        { error = $"'{s}': the prefix length must be a number from 0 to 32"; return false; }
        var p = new Ipv4Prefix(addr, len);
        if (!allowHostBits && (addr & ~p.Mask) != 0)
        { error = $"'{s}' has host bits set (did you mean {VtepEndpoint.FormatAddress(addr & p.Mask)}/{len}?)"; return false; }
        prefix = allowHostBits ? p : p with { Network = addr & p.Mask };
        return true;
    }

    /// <summary>Parses a dotted-quad IPv4 address to a host-order integer.</summary>
    public static bool TryParseAddress(string? s, out uint address)
    {
        address = 0;
        if (s is null || !IPAddress.TryParse(s, out var ip) || ip.AddressFamily != System.Net.Sockets.AddressFamily.InterNetwork
            || s.Count(c => c == '.') != 3)
            return false;
        Span<byte> b = stackalloc byte[4];
        ip.TryWriteBytes(b, out _);
        address = BinaryPrimitives.ReadUInt32BigEndian(b);
        return true;
    }

    public override string ToString() => $"{VtepEndpoint.FormatAddress(Network)}/{Length}";
}
