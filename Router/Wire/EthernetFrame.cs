using System.Buffers.Binary;
using System.Runtime.CompilerServices;

namespace UserOverlay.Router.Wire;

/// <summary>
/// Accessors of an Ethernet II frame. Callers check the length once (≥ <see cref="Constants.EthernetHeaderLength"/>)
/// before any accessor; accessors do not check again.
/// </summary>
internal static class EthernetFrame
{
    public const int DestinationOffset = 0, SourceOffset = 6, EtherTypeOffset = 12;
    public const ushort EtherTypeIPv4 = 0x0800, EtherTypeArp = 0x0806, EtherTypeVlan = 0x8100, EtherTypeIPv6 = 0x86DD;

    /// <summary>Reads a 6-byte MAC into the low 48 bits of a ulong.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static ulong ReadMac(ReadOnlySpan<byte> b) =>
        ((ulong)BinaryPrimitives.ReadUInt32BigEndian(b) << 16) | BinaryPrimitives.ReadUInt16BigEndian(b[4..]);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static ulong Destination(ReadOnlySpan<byte> f) => ReadMac(f);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static ulong Source(ReadOnlySpan<byte> f) => ReadMac(f[SourceOffset..]);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static ushort EtherType(ReadOnlySpan<byte> f) => BinaryPrimitives.ReadUInt16BigEndian(f[EtherTypeOffset..]);

    /// <summary>True for a group address (I/G bit of the first octet).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static bool IsMulticast(ulong mac) => (mac & 0x0100_0000_0000) != 0;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void WriteMac(Span<byte> b, ulong mac)
    {
        BinaryPrimitives.WriteUInt32BigEndian(b, (uint)(mac >> 16));
        BinaryPrimitives.WriteUInt16BigEndian(b[4..], (ushort)mac);
    }
}
