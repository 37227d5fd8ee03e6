using System.Buffers.Binary;

namespace UserOverlay.Router.Offload;

/// <summary>What kind of segmentation offload a frame carries (virtio-net gso_type).</summary>
public enum GsoKind : byte
{
    /// <summary>A plain frame.</summary>
    None = 0,
    /// <summary>A TCP/IPv4 super-frame to be cut into <see cref="OffloadInfo.GsoSize"/>-byte segments.</summary>
    TcpV4 = 1,
    /// <summary>A TCP/IPv6 super-frame.</summary>
    TcpV6 = 4,
    /// <summary>
    /// A UDP super-frame (IPv4 or IPv6; virtio's GSO_UDP_L4): datagrams of one flow back to back, cut by the
    /// kernel into <see cref="OffloadInfo.GsoSize"/>-byte payloads. Only ever written to a TAP (see
    /// <see cref="ITapDevice.SupportsUdpSegmentation"/>), never read from one.
    /// </summary>
    UdpL4 = 5,
}

/// <summary>
/// Offload metadata of one frame read from or written to an offload-capable TAP (the virtio-net
/// header's meaning, in host order). The default value means "a plain frame, checksums complete".
/// </summary>
public struct OffloadInfo
{
    /// <summary>Segmentation the frame needs (<see cref="GsoKind.None"/> for a plain frame).</summary>
    public GsoKind Gso;
    /// <summary>The L4 checksum is partial: compute it from <see cref="CsumStart"/> to the end and store it at CsumStart + <see cref="CsumOffset"/>.</summary>
    public bool NeedsChecksum;
    /// <summary>Payload bytes per segment (the MSS) for a super-frame.</summary>
    public ushort GsoSize;
    /// <summary>Bytes of headers (Ethernet + IP + TCP) of a super-frame.</summary>
    public ushort HeaderLength;
    /// <summary>Where checksumming starts (the L4 header), from the start of the frame.</summary>
    public ushort CsumStart;
    /// <summary>Offset of the checksum field from <see cref="CsumStart"/> (16 for TCP, 6 for UDP).</summary>
    public ushort CsumOffset;
}

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
