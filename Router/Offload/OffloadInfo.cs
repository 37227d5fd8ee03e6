namespace UserOverlay.Router.Offload;

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
