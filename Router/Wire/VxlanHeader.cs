using System.Buffers.Binary;
using System.Runtime.CompilerServices;

namespace UserOverlay.Router.Wire;

/// <summary>
/// The VXLAN header (RFC 7348 §5): flags octet (I = 0x08 marks a valid VNI), 24 reserved bits,
/// the 24-bit VNI, 8 reserved bits. On send the reserved bits are zero; on receive they are
/// ignored and only the I flag is required.
/// </summary>
internal static class VxlanHeader
{
    public const int Length = Constants.VxlanHeaderLength;
    public const byte FlagI = 0x08;
    private const int VniOffset = 4;

    /// <summary>Outcome of <see cref="TryDecode"/>.</summary>
    public enum DecodeStatus { Ok, Truncated, MissingIFlag }

    /// <summary>Writes a header for <paramref name="vni"/> into the first 8 bytes of <paramref name="b"/>.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void Write(Span<byte> b, uint vni)
    {
        BinaryPrimitives.WriteUInt32BigEndian(b, (uint)FlagI << 24);
        BinaryPrimitives.WriteUInt32BigEndian(b[VniOffset..], vni << 8);
    }

    /// <summary>
    /// Validates a received VXLAN datagram (header + inner frame) and reads its VNI. Needs the
    /// header and at least an Ethernet header behind it.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static DecodeStatus TryDecode(ReadOnlySpan<byte> datagram, out uint vni)
    {
        vni = 0;
        if (datagram.Length < Length + Constants.EthernetHeaderLength) return DecodeStatus.Truncated;
        if ((datagram[0] & FlagI) == 0) return DecodeStatus.MissingIFlag;
        vni = BinaryPrimitives.ReadUInt32BigEndian(datagram[VniOffset..]) >> 8;
        return DecodeStatus.Ok;
    }
}
