namespace UserOverlay.Router;

/// <summary>A point-in-time view of a running router, for <c>useroverlay status</c> and embedders.</summary>
/// <param name="Underlay">This host's VTEP (address:port).</param>
/// <param name="Peers">Peer VTEPs VXLAN is accepted from.</param>
/// <param name="Learning">Whether data-plane learning is on.</param>
/// <param name="FdbAgingSeconds">Aging time of learned entries.</param>
/// <param name="UptimeSeconds">Seconds since the router started.</param>
/// <param name="Networks">Per-network state.</param>
/// <param name="Drops">Drops that belong to no network (unknown source, unknown VNI, malformed VXLAN…), by reason.</param>
/// <param name="GcAllocatedBytes">GC.GetTotalAllocatedBytes of the process: compare two readings with the frame counters to see allocation per frame.</param>
/// <param name="Esp">ESP state when the host has encrypted networks, else null.</param>
/// <param name="Queues">Pipeline queues (workers) running.</param>
/// <param name="TapIo">How the workers read and write TAPs: "io_uring" (batched) or "syscalls" (one per frame).</param>
public sealed record RouterStatus(
    string Underlay,
    IReadOnlyList<string> Peers,
    bool Learning,
    double FdbAgingSeconds,
    double UptimeSeconds,
    IReadOnlyList<NetworkStatus> Networks,
    IReadOnlyDictionary<string, long> Drops,
    long GcAllocatedBytes,
    EspStatusInfo? Esp = null,
    int Queues = 1,
    string TapIo = "syscalls");

/// <summary>The ESP security associations' state (no secrets).</summary>
/// <param name="Encapsulation">"transport" (IP protocol 50) or "udp" (ESP-in-UDP).</param>
/// <param name="UdpPort">ESP-in-UDP port, 0 in transport mode.</param>
/// <param name="RekeyIntervalSeconds">Length of a key epoch.</param>
/// <param name="CurrentEpoch">The epoch outbound SAs are in.</param>
/// <param name="InboundSas">Inbound SAs held (current and neighbouring epochs).</param>
/// <param name="Rotations">Outbound SAs replaced by a newer epoch so far.</param>
/// <param name="SpiCollisions">SPIs currently shared by more than one inbound SA (detected and served separately).</param>
/// <param name="Dropped">Inbound ESP dropped, by reason.</param>
/// <param name="NotSent">Outbound frames not sent, by reason (no SA, sequence space…).</param>
public sealed record EspStatusInfo(
    string Encapsulation, int UdpPort, double RekeyIntervalSeconds, long CurrentEpoch, int InboundSas, long Rotations, int SpiCollisions,
    IReadOnlyDictionary<string, long> Dropped, IReadOnlyDictionary<string, long> NotSent);

/// <summary>One network's configuration, endpoints, tables and counters.</summary>
public sealed record NetworkStatus(
    string Name,
    uint Vni,
    int Mtu,
    string Subnet,
    IReadOnlyList<EndpointStatus> Endpoints,
    IReadOnlyList<FdbEntryStatus> Fdb,
    IReadOnlyList<NeighborStatus> Neighbors,
    IReadOnlyList<string> FloodList,
    NetworkCounters Counters);

/// <summary>A local endpoint.</summary>
public sealed record EndpointStatus(string Netns, string Interface, string Mac, string Address);

/// <summary>An FDB entry: <paramref name="Destination"/> is "local:NETNS/IFACE" or a VTEP "ip:port"; <paramref name="Source"/> is local, static, learned or gossip.</summary>
public sealed record FdbEntryStatus(string Mac, string Destination, string Source, double AgeSeconds);

/// <summary>A neighbour (IP → MAC) entry used for proxy ARP.</summary>
public sealed record NeighborStatus(string Address, string Mac, string Source, double AgeSeconds);

/// <summary>A network's counters summed over all pipeline workers.</summary>
public sealed record NetworkCounters(
    long TxFrames, long TxBytes, long EncapsulatedDatagrams,
    long RxFrames, long RxBytes, long DeliveredFrames,
    long ProxyArpReplies, long FloodedFrames,
    IReadOnlyDictionary<string, long> Drops);
