using System.Collections.Concurrent;
using System.Runtime.InteropServices;

namespace UserOverlay.Router.Testing;

/// <summary>
/// An in-memory TAP device for tests and benchmarks (wireguard-go's tuntest): frames the test
/// "sends from the endpoint" with <see cref="Inject"/> are what the router reads; frames the router
/// writes are collected and can be taken with <see cref="TryTake"/> or <see cref="WaitTake"/>.
/// Readiness is an eventfd, so the router's real epoll loop drives it. Thread-safe.
/// Allocates per frame (it is a test double, not the data path).
/// </summary>
public sealed unsafe class ChannelTap : ITapDevice
{
    private readonly ConcurrentQueue<byte[]> _toRouter = new();
    private readonly BlockingCollection<byte[]> _fromRouter = new();
    private readonly SafeFdHandle _event;

    /// <summary>Creates a device named <paramref name="name"/>.</summary>
    public ChannelTap(string name = "eth0")
    {
        Name = name;
        int fd = Interop.Libc.eventfd(0, Interop.EFD_CLOEXEC | Interop.EFD_NONBLOCK);
        if (fd < 0) throw new InvalidOperationException("eventfd failed");
        _event = new SafeFdHandle(fd);
    }

    public string Name { get; }

    public SafeHandle ReadinessHandle => _event;

    /// <summary>When false, <see cref="Write"/> refuses frames (to test write-failure counting).</summary>
    public bool AcceptWrites { get; set; } = true;

    /// <summary>Frames written by the router so far.</summary>
    public int WrittenCount => _fromRouter.Count;

    /// <summary>The test's endpoint sends a frame: the router will read it.</summary>
    public void Inject(ReadOnlySpan<byte> frame)
    {
        _toRouter.Enqueue(frame.ToArray());
        Signal();
    }

    private void Signal()
    {
        ulong one = 1;
        Interop.Libc.write(_event.Fd, (byte*)&one, 8);
    }

    public int Read(ReadOnlySpan<PacketBuffer> bufs, Span<int> sizes, int offset)
    {
        ulong v;
        Interop.Libc.read(_event.Fd, (byte*)&v, 8); // reset readiness first, then drain: no lost wake-ups
        int n = 0;
        while (n < bufs.Length && _toRouter.TryDequeue(out var f))
        {
            f.CopyTo(bufs[n].Span[offset..]);
            sizes[n++] = f.Length;
        }
        if (!_toRouter.IsEmpty) Signal();
        return n;
    }

    public bool Write(ReadOnlySpan<byte> frame)
    {
        if (!AcceptWrites) return false;
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
        _event.Dispose();
        _fromRouter.Dispose();
    }
}
