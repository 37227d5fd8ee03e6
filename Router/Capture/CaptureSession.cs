using System.Diagnostics;
using UserOverlay.Router.Forwarding;

namespace UserOverlay.Router.Capture;

/// <summary>
/// A running capture (<see cref="OverlayRouter.StartCapture"/>): the pipeline workers copy the frames it taps into one
/// bounded ring per worker, and its reader drains them with <see cref="TryRead"/>. A reader that falls behind loses
/// captured frames (counted in <see cref="Dropped"/>), never forwarded ones: the workers never wait for it.
/// Thread-safety: one reader at a time; <see cref="Captured"/>, <see cref="Dropped"/>, <see cref="Ended"/> and
/// <see cref="Dispose"/> from any thread. Disposing stops the capture (the workers stop copying at once).
/// </summary>
public sealed class CaptureSession : IDisposable
{
    private readonly OverlayRouter? _owner; // null: a session made for the pipeline harness (tests, benchmarks)
    private readonly long _startStamp = Stopwatch.GetTimestamp();
    private readonly long _startUnixNs = (DateTime.UtcNow - DateTime.UnixEpoch).Ticks * 100;
    private volatile bool _ended;

    internal readonly CaptureRing[] Rings;
    internal readonly NetworkState? Network;
    /// <summary>The endpoint's port when the capture is of one endpoint, else null.</summary>
    internal readonly LocalPort? Port;
    internal readonly ulong PortMac;
    internal readonly bool In, Out;

    internal CaptureSession(OverlayRouter? owner, CaptureOptions options, NetworkState? network, LocalPort? port, int workers, int snapLength)
    {
        _owner = owner;
        Options = options;
        Network = network;
        Port = port;
        PortMac = port?.Mac ?? 0;
        In = options.Direction != CaptureDirection.Out;
        Out = options.Direction != CaptureDirection.In;
        SnapLength = snapLength;
        int slots = (int)System.Numerics.BitOperations.RoundUpToPowerOf2((uint)options.RingFrames);
        Rings = new CaptureRing[workers];
        for (int i = 0; i < workers; i++) Rings[i] = new CaptureRing(slots, snapLength);
    }

    /// <summary>What this capture taps.</summary>
    public CaptureOptions Options { get; }

    /// <summary>Largest frame kept whole; longer ones (TCP super-frames) are cut, their <see cref="CaptureRecord.OriginalLength"/> kept.</summary>
    public int SnapLength { get; }

    /// <summary>The pcap link type of the frames: 1 (Ethernet) for inner frames, 101 (raw IP) for underlay datagrams.</summary>
    public int LinkType => Options.Underlay ? 101 : 1;

    /// <summary>Frames taken so far (including those dropped later for want of room: see <see cref="Dropped"/>).</summary>
    public long Captured
    {
        get { long n = 0; foreach (var r in Rings) n += Volatile.Read(ref r.Captured); return n; }
    }

    /// <summary>Frames the capture lost because its reader fell behind (the rings were full). Forwarding lost none of them.</summary>
    public long Dropped
    {
        get { long n = 0; foreach (var r in Rings) n += Volatile.Read(ref r.Dropped); return n; }
    }

    /// <summary>True once the capture is over: disposed, its network removed, or the router stopped. Frames still in the rings may be read.</summary>
    public bool Ended => _ended;

    internal void End() => _ended = true;

    /// <summary>
    /// Moves the oldest waiting frame (across the workers' rings, by time) to <paramref name="destination"/>, which must
    /// hold <see cref="SnapLength"/> bytes; false when none waits.
    /// </summary>
    public bool TryRead(Span<byte> destination, out CaptureRecord record)
    {
        if (destination.Length < SnapLength) throw new ArgumentException($"the buffer must hold {SnapLength} bytes", nameof(destination));
        CaptureRing? oldest = null;
        long best = long.MaxValue;
        foreach (var r in Rings)
            if (r.TryPeek(out long stamp) && stamp < best) { best = stamp; oldest = r; }
        if (oldest is null || !oldest.TryRead(destination, out int length, out int original, out long at, out var direction))
        {
            record = default;
            return false;
        }
        long ns = _startUnixNs + (long)((at - _startStamp) * (1e9 / Stopwatch.Frequency));
        record = new CaptureRecord(length, original, ns, direction);
        return true;
    }

    /// <summary>Stops the capture.</summary>
    public void Dispose()
    {
        if (_owner is not null) _owner.StopCapture(this);
        else End();
    }
}
