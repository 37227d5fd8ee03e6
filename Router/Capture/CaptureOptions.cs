namespace UserOverlay.Router.Capture;

/// <summary>What <see cref="OverlayRouter.StartCapture"/> taps.</summary>
/// <param name="Network">The network whose inner frames are captured; ignored (may be null) with <paramref name="Underlay"/>.</param>
/// <param name="Endpoint">Only the frames of the endpoint in this network namespace (its own and those addressed to it,
/// broadcast and multicast included); null: every frame of the network.</param>
/// <param name="Direction">In, out or both (<see cref="CaptureDirection"/>).</param>
/// <param name="Underlay">Capture the outer datagrams of this host's sockets (VXLAN, ESP) instead of inner frames.</param>
/// <param name="RingFrames">Frames each worker's ring holds for the reader; when it is full, captured frames are dropped
/// (and counted), never forwarded ones.</param>
public sealed record CaptureOptions(
    string? Network,
    string? Endpoint = null,
    CaptureDirection Direction = CaptureDirection.Both,
    bool Underlay = false,
    int RingFrames = CaptureOptions.DefaultRingFrames)
{
    /// <summary>Default <see cref="RingFrames"/>: a ring per worker of 1,024 frames (about 1.5 MB at an MTU of 1,500).</summary>
    public const int DefaultRingFrames = 1024;
    /// <summary>Largest <see cref="RingFrames"/>.</summary>
    public const int MaxRingFrames = 65536;
}
