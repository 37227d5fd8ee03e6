using UserOverlay.Router.Capture;
using UserOverlay.Router.Forwarding;

namespace UserOverlay.Router;

// Live capture: the taps are in the pipeline (CaptureTap); here the control side starts and stops sessions.
public sealed partial class OverlayRouter
{
    /// <summary>
    /// Starts a capture of one network's inner frames (decrypted on an encrypted network), or with
    /// <see cref="CaptureOptions.Underlay"/> of the outer datagrams of this host's sockets. Several may run at once; each
    /// has its own rings. Throws <see cref="RouterException"/> with <see cref="RouterErrorCode.NotFound"/> naming the
    /// network or endpoint that is not on this router, and <see cref="ArgumentOutOfRangeException"/> for a bad ring size.
    /// </summary>
    public CaptureSession StartCapture(CaptureOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        if (options.RingFrames is < 1 or > CaptureOptions.MaxRingFrames)
            throw new ArgumentOutOfRangeException(nameof(options), options.RingFrames, $"RingFrames: must be 1 to {CaptureOptions.MaxRingFrames}");
        if (!Enum.IsDefined(options.Direction))
            throw new ArgumentOutOfRangeException(nameof(options), options.Direction, "Direction: must be in, out or both");
        lock (_controlLock)
        {
            ThrowIfDisposed();
            if (options.Underlay)
            {
                // Outer datagrams: the largest inner frame, plus IPv4, UDP, ESP (header, IV, trailer, ICV) and VXLAN.
                int snap = _byName.Values.Select(n => n.MaxFrameLength).DefaultIfEmpty(Constants.EthernetHeaderLength + 1500).Max() + 128;
                var u = new CaptureSession(this, options, null, null, _state.Workers, snap);
                _state.UnderlayCaptures = [.. _state.UnderlayCaptures ?? [], u];
                return u;
            }
            if (options.Network is null || !_byName.TryGetValue(options.Network, out var net))
                throw new RouterException(RouterErrorCode.NotFound, $"network: '{options.Network}' is not on this router");
            LocalPort? port = null;
            if (options.Endpoint is { } netns)
                port = net.Ports.ToList().FirstOrDefault(p => p.Options.Netns == netns)
                    ?? throw new RouterException(RouterErrorCode.NotFound, $"endpoint: network '{options.Network}' has no endpoint in namespace '{netns}' on this host");
            var s = new CaptureSession(this, options, net, port, _state.Workers, net.MaxFrameLength);
            net.Captures = [.. net.Captures ?? [], s];
            return s;
        }
    }

    /// <summary>The captures running now (for metrics and status).</summary>
    public IReadOnlyList<CaptureSession> Captures
    {
        get
        {
            var all = new List<CaptureSession>(_state.UnderlayCaptures ?? []);
            foreach (var net in _byName.Values) all.AddRange(net.Captures ?? []);
            return all;
        }
    }

    /// <summary>Frames captures lost because their readers fell behind, summed over every capture this router ran.</summary>
    public long CaptureDrops => Interlocked.Read(ref _endedCaptureDrops) + Captures.Sum(c => c.Dropped);

    private long _endedCaptureDrops;

    /// <summary>Stops <paramref name="session"/> (idempotent): the workers stop copying once the next frame reads the new set.</summary>
    internal void StopCapture(CaptureSession session)
    {
        lock (_controlLock)
        {
            if (session.Options.Underlay)
            {
                var left = (_state.UnderlayCaptures ?? []).Where(c => c != session).ToArray();
                if (left.Length != (_state.UnderlayCaptures?.Length ?? 0)) Interlocked.Add(ref _endedCaptureDrops, session.Dropped);
                _state.UnderlayCaptures = left.Length == 0 ? null : left;
            }
            else if (session.Network is { } net)
            {
                var left = (net.Captures ?? []).Where(c => c != session).ToArray();
                if (left.Length != (net.Captures?.Length ?? 0)) Interlocked.Add(ref _endedCaptureDrops, session.Dropped);
                net.Captures = left.Length == 0 ? null : left;
            }
            session.End();
        }
    }
}
