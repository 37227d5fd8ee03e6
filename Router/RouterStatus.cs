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
/// <param name="PeerDetails">The <paramref name="Peers"/> in the same order, each with how long ago anything valid was last heard
/// from it (null when absent, from a router that does not report it).</param>
/// <param name="FdbUnansweredSeconds"><see cref="RouterOptions.UnansweredAging"/> (0: off).</param>
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
    string TapIo = "syscalls",
    IReadOnlyList<PeerStatus>? PeerDetails = null,
    double FdbUnansweredSeconds = 0);

/// <summary>A peer VTEP and how long ago a valid datagram (VXLAN of one of this host's networks, or authentic ESP) last came from it.</summary>
/// <param name="Vtep">The peer, "ip:port".</param>
/// <param name="LastHeardSeconds">Seconds since it was last heard, to 0.1 s; null when it never was.</param>
public sealed record PeerStatus(string Vtep, double? LastHeardSeconds);
