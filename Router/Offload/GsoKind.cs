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
