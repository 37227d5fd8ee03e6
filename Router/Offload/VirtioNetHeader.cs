using System.Buffers.Binary;

namespace UserOverlay.Router.Offload;

/// <summary>
/// struct virtio_net_hdr (10 bytes, the TAP's IFF_VNET_HDR prefix; little-endian on the hosts the
/// router supports): flags, gso_type, hdr_len, gso_size, csum_start, csum_offset.
/// </summary>
internal static class VirtioNetHeader
{
    public const int Length = 10;
    public const byte FlagNeedsCsum = 1, FlagDataValid = 2;
    public const byte GsoNone = 0, GsoTcpV4 = 1, GsoUdp = 3, GsoTcpV6 = 4, GsoUdpL4 = 5, GsoEcn = 0x80;

    /// <summary>Parses a header; false for a GSO type the router did not enable (UFO/USO).</summary>
    public static bool TryRead(ReadOnlySpan<byte> h, out OffloadInfo info)
    {
        info = default;
        byte gso = (byte)(h[1] & ~GsoEcn);
        if (gso is not (GsoNone or GsoTcpV4 or GsoTcpV6)) return false;
        info.Gso = (GsoKind)gso;
        info.NeedsChecksum = (h[0] & FlagNeedsCsum) != 0;
        info.HeaderLength = BinaryPrimitives.ReadUInt16LittleEndian(h[2..]);
        info.GsoSize = BinaryPrimitives.ReadUInt16LittleEndian(h[4..]);
        info.CsumStart = BinaryPrimitives.ReadUInt16LittleEndian(h[6..]);
        info.CsumOffset = BinaryPrimitives.ReadUInt16LittleEndian(h[8..]);
        return true;
    }

    /// <summary>Writes a header for <paramref name="info"/>.</summary>
    public static void Write(Span<byte> h, in OffloadInfo info)
    {
        h[0] = info.NeedsChecksum ? FlagNeedsCsum : (byte)0;
        h[1] = (byte)info.Gso;
        BinaryPrimitives.WriteUInt16LittleEndian(h[2..], info.HeaderLength);
        BinaryPrimitives.WriteUInt16LittleEndian(h[4..], info.GsoSize);
        BinaryPrimitives.WriteUInt16LittleEndian(h[6..], info.CsumStart);
        BinaryPrimitives.WriteUInt16LittleEndian(h[8..], info.CsumOffset);
    }
}
