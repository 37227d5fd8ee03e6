using System.Buffers.Binary;
using System.Net;

namespace UserOverlay.Router;

/// <summary>
/// A VXLAN tunnel endpoint on the IPv4 underlay: address and UDP port. The address is held as
/// a host-order integer so the data path compares and hashes it without objects.
/// </summary>
public readonly record struct VtepEndpoint(uint Address, ushort Port)
{
    /// <summary>From an <see cref="IPAddress"/> (IPv4 only) and a port.</summary>
    public static VtepEndpoint From(IPAddress address, int port)
    {
        Span<byte> b = stackalloc byte[4];
        if (!address.TryWriteBytes(b, out int n) || n != 4)
            throw new ArgumentException($"'{address}' is not an IPv4 address (the underlay is IPv4)", nameof(address));
        return new VtepEndpoint(BinaryPrimitives.ReadUInt32BigEndian(b), checked((ushort)port));
    }

    /// <summary>The address as an <see cref="IPAddress"/> (allocates; not for the data path).</summary>
    public IPAddress IPAddress => ToIPAddress(Address);

    /// <summary>A host-order IPv4 integer as an <see cref="IPAddress"/>.</summary>
    public static IPAddress ToIPAddress(uint address)
    {
        Span<byte> b = stackalloc byte[4];
        BinaryPrimitives.WriteUInt32BigEndian(b, address);
        return new IPAddress(b);
    }

    public override string ToString() => $"{IPAddress}:{Port}";

    /// <summary>Formats a host-order IPv4 integer as dotted quad.</summary>
    public static string FormatAddress(uint address) =>
        $"{address >> 24}.{(address >> 16) & 0xFF}.{(address >> 8) & 0xFF}.{address & 0xFF}";
}
