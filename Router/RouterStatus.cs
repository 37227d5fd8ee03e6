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
