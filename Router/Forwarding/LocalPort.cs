using UserOverlay.Router.Tap;

namespace UserOverlay.Router.Forwarding;

/// <summary>
/// A local endpoint's port on a network: its TAP device and identity. Created when the endpoint
/// is attached; immutable afterwards but for the bookkeeping fields at the end, which only the router's control side touches.
/// </summary>
internal sealed class LocalPort(int id, NetworkState network, EndpointOptions options, ITapDevice tap)
{
    public readonly int Id = id;
    public readonly NetworkState Network = network;
    public readonly EndpointOptions Options = options;
    public readonly ulong Mac = options.EffectiveMac.Value;
    public readonly uint Address = options.Address;
    public readonly ITapDevice Tap = tap;
    /// <summary>The TAP's descriptor when a worker's io_uring may write to it (<see cref="IRingWritableTap"/>), else -1.</summary>
    public readonly int RingFd = tap is IRingWritableTap ring ? ring.WriteFd : -1;
    /// <summary>Whether a write to the TAP's descriptor starts with a virtio-net header (the device has offload).</summary>
    public readonly bool TapHasVnetHeader = tap.SupportsOffload;

    /// <summary>The port's slot in <see cref="NetworkState.Ports"/> (-1 when not in it); written under the network list's writers' lock.</summary>
    public int ListSlot = -1;

    /// <summary>
    /// How many learned FDB entries have been set behind this port (MACs other than its own, e.g. a bridge in the
    /// namespace), counted up and never down: when 0, detaching removes only the port's own entry instead of scanning the FDB.
    /// </summary>
    public int LearnedEntries;

    /// <summary>Set (under the router's inject lock) just before the TAP is closed: <see cref="OverlayRouter.InjectFrame"/> writes to it no more.</summary>
    public bool Closed;

    /// <summary>Queues of the TAP that workers stopped reading because the device went away (incremented by the workers).</summary>
    public int GoneQueues;
}
