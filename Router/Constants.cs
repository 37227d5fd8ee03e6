namespace UserOverlay.Router;

/// <summary>Wire and implementation constants of the data plane.</summary>
public static class Constants
{
    // Specification constants

    /// <summary>IANA-assigned VXLAN UDP destination port (RFC 7348 §5).</summary>
    public const int VxlanPort = 4789;

    /// <summary>VXLAN header: flags (8 bits, I = 0x08), 24 reserved, VNI (24 bits), 8 reserved (RFC 7348 §5).</summary>
    public const int VxlanHeaderLength = 8;

    /// <summary>Largest VNI: the field is 24 bits wide (RFC 7348 §5).</summary>
    public const uint MaxVni = 0xFF_FFFF;

    /// <summary>Ethernet II header: destination MAC, source MAC, EtherType.</summary>
    public const int EthernetHeaderLength = 14;

    /// <summary>An 802.1Q tag inside the inner frame adds 4 bytes.</summary>
    public const int VlanTagLength = 4;

    /// <summary>IPv4 header without options (RFC 791).</summary>
    public const int Ipv4HeaderLength = 20;

    /// <summary>UDP header (RFC 768).</summary>
    public const int UdpHeaderLength = 8;

    /// <summary>
    /// Bytes VXLAN over IPv4 adds around an inner IP packet: outer IPv4 20 + UDP 8 + VXLAN 8 +
    /// inner Ethernet 14 = 50, so an underlay MTU of 1500 leaves an inner MTU of 1450 (RFC 7348 §4.3).
    /// </summary>
    public const int VxlanOverhead = Ipv4HeaderLength + UdpHeaderLength + VxlanHeaderLength + EthernetHeaderLength;

    /// <summary>ARP over Ethernet for IPv4 (RFC 826): 28 bytes.</summary>
    public const int ArpIpv4Length = 28;

    // Implementation constants

    /// <summary>Most pipeline workers (queues) a router runs: <see cref="RouterOptions.Queues"/> is at most 64.</summary>
    public const int MaxWorkers = 64;

    /// <summary>Frames a pipeline stage handles per batch (one recvmmsg, one drain of the ready TAPs).</summary>
    public const int IdealBatchSize = 64;

    /// <summary>Datagrams one sendmmsg may carry (the kernel's UIO_MAXIOV bounds vlen at 1024).</summary>
    public const int MaxSendBatch = 1024;

    /// <summary>
    /// Bytes reserved in front of every frame in a packet buffer so outer headers are written in
    /// place: VXLAN 8, ESP header 8 + IV 8, UDP 8 (ESP-in-UDP or a raw-socket UDP header), a
    /// virtio-net header 12 (IFF_VNET_HDR), rounded up to a cache line.
    /// </summary>
    public const int Headroom = 64;

    /// <summary>Bytes reserved after the frame: ESP padding (≤ 3) + pad length + next header + ICV 16, rounded up.</summary>
    public const int Tailroom = 32;

    /// <summary>Largest inner MTU a network may configure (jumbo underlays).</summary>
    public const int MaxMtu = 9000;

    /// <summary>Largest inner frame the data path carries: MTU + Ethernet + one VLAN tag.</summary>
    public const int MaxFrameLength = MaxMtu + EthernetHeaderLength + VlanTagLength;

    /// <summary>Bytes of one packet buffer: headroom + largest frame + tailroom, rounded to 64.</summary>
    public const int PacketBufferSize = (Headroom + MaxFrameLength + Tailroom + 63) & ~63;

    /// <summary>Largest frame an offload-capable TAP hands over or accepts: a 64 KB IP packet plus Ethernet and a VLAN tag.</summary>
    public const int MaxGsoFrameLength = 65535 + EthernetHeaderLength + VlanTagLength;

    /// <summary>Bytes of a buffer that can hold a TCP super-frame (TSO read, coalesced write), with headroom and tailroom.</summary>
    public const int GsoBufferSize = (Headroom + MaxGsoFrameLength + Tailroom + 1023) & ~1023;

    /// <summary>Default inner MTU: a 1500-byte underlay minus <see cref="VxlanOverhead"/>.</summary>
    public const int DefaultMtu = 1500 - VxlanOverhead;

    /// <summary>Age after which a learned FDB entry is removed when no frame refreshed it (the kernel vxlan default).</summary>
    public static readonly TimeSpan DefaultFdbAging = TimeSpan.FromSeconds(300);

    /// <summary>
    /// Default <see cref="RouterOptions.UnansweredAging"/>: a learned remote entry that has been sent to for this long
    /// with nothing heard from its MAC or its VTEP is removed (a silent VTEP is forgotten in 5–6 s, not 300).
    /// </summary>
    public static readonly TimeSpan DefaultUnansweredAging = TimeSpan.FromSeconds(5);

    /// <summary>
    /// Granularity of the freshness stamps the data path writes (an FDB entry's last seen and last sent, a peer's last
    /// heard): a stamp is rewritten only when it is at least this old, so a busy flow writes each shared stamp about ten
    /// times a second, not once per frame, and the workers do not pull the cache line back and forth.
    /// </summary>
    public const long StampGranularityMilliseconds = 100;

    /// <summary>Most learned entries one network's FDB (and its neighbour table) holds; beyond it new MACs are not learned (counted).</summary>
    public const int MaxLearnedEntriesPerNetwork = 16384;

    /// <summary>Packet buffers one pool may hold; a bound, like wireguard-go's WaitPool cap.</summary>
    public const int MaxPooledBuffers = 8192;

    /// <summary>
    /// The gateway MAC of a network (<see cref="NetworkOptions.Gateway"/>) is this prefix, 02:75:6f ("uo", locally
    /// administered and unicast), followed by the network's 24-bit VNI: the same on every host (each host answers for its
    /// own gateway, so the MAC never crosses the underlay), distinct between the networks of a host, and never an
    /// endpoint's MAC that UserOverlay or Docker derives from an address (02:00:… and 02:42:…).
    /// </summary>
    public const ulong GatewayMacPrefix = 0x0275_6F00_0000;

    /// <summary>The gateway MAC of the network with VNI <paramref name="vni"/> (see <see cref="GatewayMacPrefix"/>).</summary>
    public static MacAddress GatewayMac(uint vni) => new(GatewayMacPrefix | (vni & MaxVni));
}
