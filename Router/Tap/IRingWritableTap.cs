namespace UserOverlay.Router.Tap;

/// <summary>
/// Optional capability of an <see cref="ITapDevice"/> (as wireguard-go's optional interfaces): the device is a kernel file
/// descriptor that a worker's io_uring may write frames to directly, each preceded by a virtio-net header when the
/// device has <see cref="ITapDevice.SupportsOffload"/>. Asked once, when a port is attached
/// (<see cref="Forwarding.LocalPort.RingFd"/>), so the per-frame path tests no types.
/// </summary>
internal interface IRingWritableTap
{
    /// <summary>The descriptor frames are written to; valid until the device is disposed.</summary>
    int WriteFd { get; }
}
