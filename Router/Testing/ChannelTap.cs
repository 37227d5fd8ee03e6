using System.Collections.Concurrent;
using System.Runtime.InteropServices;
using UserOverlay.Router.Linux;
using UserOverlay.Router.Offload;

namespace UserOverlay.Router.Testing;

/// <summary>
/// An in-memory TAP device for tests and benchmarks (wireguard-go's tuntest): frames the test
/// "sends from the endpoint" with <see cref="Inject(ReadOnlySpan{byte})"/> are what the router reads; frames the router
/// writes are collected and can be taken with <see cref="TryTake"/> or <see cref="WaitTake"/>.
/// Readiness is an eventfd, so the router's real epoll loop drives it. Thread-safe.
/// Allocates per frame (it is a test double, not the data path).
/// </summary>
public sealed class ChannelTap : ITapDevice
{
    private readonly ConcurrentQueue<(byte[] Frame, OffloadInfo Info)> _toRouter = new();
    private readonly BlockingCollection<byte[]> _fromRouter = new();
    private readonly ConcurrentQueue<(byte[] Frame, OffloadInfo Info)> _offloadWrites = new();
    private readonly EventFd _event = new();
    private readonly SafeHandle? _unpollable;
    private Action<ChannelTap>? _disposed;
    private int _disposedOnce;
    private volatile bool _gone;

    /// <summary>Creates a device named <paramref name="name"/>; with <paramref name="offload"/> it behaves like an offload-capable TAP.</summary>
    public ChannelTap(string name = "eth0", bool offload = false)
    {
        Name = name;
        SupportsOffload = offload;
    }

    public string Name { get; }

    public SafeHandle ReadinessHandle => _unpollable ?? _event.Handle;

    /// <summary>
    /// A device whose readiness handle epoll refuses (a regular file: EPERM), so registering it with a worker fails:
    /// failure injection for the attach path. <paramref name="disposed"/> is called once when the device is disposed.
    /// </summary>
    internal ChannelTap(string name, bool unpollable, Action<ChannelTap>? disposed) : this(name)
    {
        _disposed = disposed;
        if (unpollable)
        {
            string path = Path.Combine(Path.GetTempPath(), $"uo-unpollable-{Environment.ProcessId}-{Guid.NewGuid():N}");
            _unpollable = File.OpenHandle(path, FileMode.CreateNew, FileAccess.ReadWrite, FileShare.None, FileOptions.DeleteOnClose);
        }
    }

    /// <summary>True once disposed.</summary>
    public bool IsDisposed => Volatile.Read(ref _disposedOnce) != 0;

    /// <summary>When false, <see cref="Write"/> refuses frames (to test write-failure counting).</summary>
    public bool AcceptWrites { get; set; } = true;

    /// <summary>Frames written by the router so far.</summary>
    public int WrittenCount => _fromRouter.Count;

    /// <summary>True when created with offload: <see cref="WriteOffload"/> accepts super-frames.</summary>
    public bool SupportsOffload { get; }

    /// <summary>Takes UDP super-frames too when set (off by default, so tests see datagrams one by one).</summary>
    public bool SupportsUdpSegmentation { get; init; }

    /// <summary>Super-frames the router wrote with offload metadata (besides being in the normal output as whole frames).</summary>
    public IReadOnlyCollection<(byte[] Frame, OffloadInfo Info)> OffloadWrites => _offloadWrites;

    /// <summary>The test's endpoint sends a frame: the router will read it.</summary>
    public void Inject(ReadOnlySpan<byte> frame) => Inject(frame, default);

    /// <summary>The endpoint sends a frame with offload metadata (a TSO super-frame, or a partial checksum).</summary>
    public void Inject(ReadOnlySpan<byte> frame, in OffloadInfo info)
    {
        _toRouter.Enqueue((frame.ToArray(), info));
        _event.Signal();
    }

    /// <summary>
    /// The device goes away under the router, as a kernel TAP does when its interface is deleted: from now on it polls
    /// readable for ever, every read returns nothing and <see cref="IsGone"/> is true.
    /// </summary>
    public void Vanish()
    {
        _gone = true;
        _event.Signal();
    }

    /// <inheritdoc />
    public bool IsGone => _gone;

    /// <summary>Reads the router made so far (to tell a worker that stopped reading from one that spins).</summary>
    public long ReadCalls => Interlocked.Read(ref _readCalls);

    private long _readCalls;

    public int Read(ReadOnlySpan<PacketBuffer> bufs, Span<int> sizes, Span<OffloadInfo> offloads, int offset)
    {
        Interlocked.Increment(ref _readCalls);
        if (_gone) return 0; // readiness stays set: what a deleted TAP's EPOLLERR does
        _event.Reset(); // reset readiness first, then drain: no lost wake-ups
        int n = 0;
        while (n < bufs.Length && _toRouter.TryDequeue(out var f))
        {
            if (f.Frame.Length > bufs[n].Capacity - offset) continue; // a real TAP never hands over more than fits
            f.Frame.CopyTo(bufs[n].Span[offset..]);
            offloads[n] = f.Info;
            sizes[n++] = f.Frame.Length;
        }
        if (!_toRouter.IsEmpty) _event.Signal();
        return n;
    }

    /// <summary>When set, every write first waits for the gate to open (to hold a worker inside a round, in tests of the quiesce handshake).</summary>
    public ManualResetEventSlim? WriteGate { get; set; }

    public bool Write(ReadOnlySpan<byte> frame)
    {
        WriteGate?.Wait();
        if (!AcceptWrites) return false;
        _fromRouter.Add(frame.ToArray());
        return true;
    }

    public bool WriteOffload(ReadOnlySpan<byte> frame, in OffloadInfo info)
    {
        if (!SupportsOffload || !AcceptWrites) return false;
        _offloadWrites.Enqueue((frame.ToArray(), info));
        _fromRouter.Add(frame.ToArray());
        return true;
    }

    /// <summary>Takes one frame the router wrote, if any.</summary>
    public bool TryTake(out byte[] frame) => _fromRouter.TryTake(out frame!);

    /// <summary>Waits up to <paramref name="timeout"/> for a frame the router writes; null on timeout.</summary>
    public byte[]? WaitTake(TimeSpan timeout) => _fromRouter.TryTake(out var f, timeout) ? f : null;

    /// <summary>Discards every frame written so far.</summary>
    public void Clear() { while (_fromRouter.TryTake(out _)) { } }

    public void Dispose()
    {
        if (Interlocked.Exchange(ref _disposedOnce, 1) != 0) return;
        _event.Dispose();
        _unpollable?.Dispose();
        _fromRouter.Dispose();
        _disposed?.Invoke(this);
    }
}
