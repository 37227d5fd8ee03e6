using UserOverlay.Router.Linux;

namespace UserOverlay.Router;

/// <summary>
/// What a pipeline worker passes with each TAP read (<see cref="ITapDevice.Read(in TapReadContext, ReadOnlySpan{PacketBuffer}, Span{int}, Span{Offload.OffloadInfo}, int, out bool)"/>):
/// which of the worker's epoll rounds this is, and the worker's io_uring when it has one. A device may use the round to
/// tell a busy queue (read in consecutive rounds) from a quiet one; only the router's own TAPs use the ring.
/// A value type passed by reference: nothing allocates.
/// </summary>
public readonly struct TapReadContext
{
    /// <summary>A context for round <paramref name="round"/>, without an io_uring (how a test or an embedder drives a device).</summary>
    public TapReadContext(long round) => Round = round;

    internal TapReadContext(long round, IoRing? ring)
    {
        Round = round;
        Ring = ring;
    }

    /// <summary>The worker's epoll round: it grows by one per wake, so a queue read in rounds r and r + 1 is busy.</summary>
    public long Round { get; }

    /// <summary>The worker's io_uring (created on and used by the worker's thread only), or null.</summary>
    internal IoRing? Ring { get; }
}
