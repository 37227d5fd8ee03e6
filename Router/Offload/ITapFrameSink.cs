using UserOverlay.Router.Forwarding;

namespace UserOverlay.Router.Offload;

/// <summary>
/// Where the <see cref="Coalescer"/> hands its super-frames: the worker's TAP writes (<c>Pipeline.TapWriteQueue</c>),
/// so they leave in order with the round's other frames. Contract: a frame handed over lies in pinned memory and stays
/// unchanged until <see cref="Flush"/> returns; after it, the frame's buffer is the caller's again.
/// Called on the worker's thread only.
/// </summary>
internal interface ITapFrameSink
{
    /// <summary>
    /// Writes (or queues) a super-frame of <paramref name="segments"/> frames already counted delivered in
    /// <paramref name="c"/>, with offload metadata when <paramref name="offload"/>; if the TAP refuses it, they become drops.
    /// </summary>
    void DeliverCounted(LocalPort port, ReadOnlySpan<byte> frame, in OffloadInfo info, bool offload, int segments, TrafficCounters c);

    /// <summary>Writes whatever is queued.</summary>
    void Flush();
}
