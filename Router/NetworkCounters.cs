namespace UserOverlay.Router;

/// <summary>A network's counters summed over all pipeline workers.</summary>
public sealed record NetworkCounters(
    long TxFrames, long TxBytes, long EncapsulatedDatagrams,
    long RxFrames, long RxBytes, long DeliveredFrames,
    long ProxyArpReplies, long FloodedFrames,
    IReadOnlyDictionary<string, long> Drops,
    long GatewayReplies = 0,
    // Learned FDB entries removed because their VTEP went silent while frames were sent to them
    // (RouterOptions.UnansweredAging); each such MAC's frames then flood until it is learned again.
    long FdbUnansweredRemoved = 0,
    // TAP queues the workers stopped reading because the device went away under the router (TrafficCounters.TapQueuesGone).
    long TapQueuesGone = 0);
