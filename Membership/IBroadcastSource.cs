namespace UserOverlay.Membership;

/// <summary>
/// The embedder's gossip broadcasts, piggybacked on memberlist's own (memberlist's GetBroadcasts).
/// <see cref="TransmitLimitedQueue"/> implements the usual policy.
/// </summary>
public interface IBroadcastSource
{
    /// <summary>
    /// Returns messages to piggyback, each at most <paramref name="limit"/> − <paramref name="overhead"/>
    /// bytes and all together at most <paramref name="limit"/> counting <paramref name="overhead"/> per
    /// message. Called concurrently from the gossip loop and from every send path: must be
    /// thread-safe and must not block.
    /// </summary>
    IReadOnlyList<byte[]> GetBroadcasts(int overhead, int limit);
}
