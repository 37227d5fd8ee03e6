using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using UserOverlay.Router.Forwarding;
using UserOverlay.Router.Linux;
using UserOverlay.Router.Offload;

namespace UserOverlay.Router.Pipeline;

/// <summary>
/// One worker's writes to its endpoints' TAPs: the one route every frame takes to a TAP, from both directions
/// (<see cref="Outbound"/>'s same-host deliveries and proxy ARP replies, <see cref="Inbound"/>'s deliveries and the
/// <see cref="Coalescer"/>'s super-frames). With an <see cref="IoRing"/> the frames of a round are queued and written
/// together by <see cref="Flush"/> — one io_uring_enter for the round instead of a write(2) per frame — to a TAP the ring
/// may write (<see cref="Tap.IRingWritableTap"/>, looked up once per port); otherwise each frame is written at once.
/// <para>
/// Contract: a queued frame lies in pinned memory (a <see cref="PacketBuffer"/>) and stays unchanged until
/// <see cref="Flush"/>, which the worker calls at the end of every receive round and <see cref="Outbound.Flush"/> calls
/// before the TAP buffers are read into again. Writes leave in the order they were given (first in, first out), whichever TAP they go to.
/// Counting: a frame is counted delivered when queued; if the TAP refuses it, the count moves to
/// <see cref="DropReason.EndpointWriteFailed"/> when the round is flushed.
/// </para>
/// Not thread-safe: one per worker. Nothing allocates after <see cref="Attach"/>.
/// </summary>
internal sealed unsafe class TapWriteQueue : ITapFrameSink, IDisposable
{
    /// <summary>Frames queued before the queue writes them without waiting for the round to end.</summary>
    public const int Capacity = 64;
    private const int HeaderStride = 16;

    private IoRing? _ring;
    private Interop.IoVec* _iov;   // two per slot: virtio-net header, frame
    private byte* _headers;        // HeaderStride bytes per slot
    private readonly TrafficCounters?[] _counters = new TrafficCounters?[Capacity];
    private readonly int[] _segments = new int[Capacity];
    private readonly int[] _fds = new int[Capacity];
    private int _count;

    /// <summary>True when frames are queued (written by <see cref="Flush"/>), false when each is written at once.</summary>
    public bool Batching => _ring is not null;

    /// <summary>Starts queueing through <paramref name="ring"/> (the worker's, used on the worker's thread only).</summary>
    public void Attach(IoRing ring)
    {
        if (ring.Capacity < Capacity) throw new ArgumentException($"the ring must take {Capacity} submissions", nameof(ring));
        _iov = (Interop.IoVec*)NativeMemory.AlignedAlloc((nuint)(Capacity * 2 * sizeof(Interop.IoVec)), 64);
        _headers = (byte*)NativeMemory.AlignedAlloc(Capacity * HeaderStride, 64);
        NativeMemory.Clear(_headers, Capacity * HeaderStride);
        _ring = ring;
    }

    /// <summary>Delivers a frame (checksums complete) to <paramref name="port"/>'s TAP: counts it delivered, or dropped if refused.</summary>
    public void Deliver(LocalPort port, ReadOnlySpan<byte> frame, TrafficCounters c)
    {
        if (_ring is null || port.RingFd < 0)
        {
            if (port.Tap.Write(frame)) c.DeliveredFrames++;
            else c.Drops[(int)DropReason.EndpointWriteFailed]++;
            return;
        }
        c.DeliveredFrames++;
        Enqueue(port, frame, default, c, 1);
    }

    /// <summary>
    /// Writes a super-frame of <paramref name="segments"/> frames that were counted delivered as they joined it (with
    /// offload metadata when <paramref name="offload"/>); if the TAP refuses it they become drops.
    /// </summary>
    public void DeliverCounted(LocalPort port, ReadOnlySpan<byte> frame, in OffloadInfo info, bool offload, int segments, TrafficCounters c)
    {
        if (_ring is null || port.RingFd < 0)
        {
            bool ok = offload ? port.Tap.WriteOffload(frame, info) : port.Tap.Write(frame);
            if (!ok) Refused(c, segments);
            return;
        }
        Enqueue(port, frame, offload ? info : default, c, segments);
    }

    /// <summary>
    /// Writes <paramref name="frame"/> to <paramref name="port"/>'s TAP before returning, after everything queued (so
    /// order is kept): for a frame in a buffer the caller reuses at once (a proxy ARP reply). False when the TAP refused it;
    /// the caller counts it.
    /// </summary>
    public bool WriteNow(LocalPort port, ReadOnlySpan<byte> frame)
    {
        Flush();
        return port.Tap.Write(frame);
    }

    private void Enqueue(LocalPort port, ReadOnlySpan<byte> frame, in OffloadInfo info, TrafficCounters c, int segments)
    {
        if (_count == Capacity) Flush(); // every queued frame is still in place: writing early is safe
        int i = _count++;
        _counters[i] = c;
        _segments[i] = segments;
        _fds[i] = port.RingFd;
        Interop.IoVec* v = _iov + 2 * i;
        v[1] = new Interop.IoVec { Base = (byte*)Unsafe.AsPointer(ref MemoryMarshal.GetReference(frame)), Length = (nuint)frame.Length }; // pinned (the contract)
        if (port.TapHasVnetHeader)
        {
            byte* h = _headers + i * HeaderStride;
            VirtioNetHeader.Write(new Span<byte>(h, VirtioNetHeader.Length), info);
            v[0] = new Interop.IoVec { Base = h, Length = VirtioNetHeader.Length };
        }
        else v[0] = default;
    }

    /// <summary>Writes every queued frame (one io_uring_enter) and settles the counts of any the TAPs refused.</summary>
    public void Flush()
    {
        int count = _count;
        if (count == 0) return;
        _count = 0;
        if (count == 1)
        {
            // One frame (a ping's): a plain write(2) costs less than an enter and touches none of the ring's pages.
            Interop.IoVec* v = _iov;
            nint n = v[0].Length == 0 ? Interop.Libc.write(_fds[0], v[1].Base, (nint)v[1].Length) : Interop.Libc.writev(_fds[0], v, 2);
            if (n != (nint)(v[0].Length + v[1].Length)) Refused(_counters[0]!, _segments[0]);
            _counters[0] = null;
            return;
        }
        IoRing ring = _ring!;
        for (int i = 0; i < count; i++)
        {
            Interop.IoVec* v = _iov + 2 * i;
            if (v[0].Length == 0) ring.PrepareWrite(_fds[i], v[1].Base, (uint)v[1].Length, (uint)i);
            else ring.PrepareWritev(_fds[i], v, 2, (uint)i);
        }
        Span<bool> written = stackalloc bool[count]; // a write the kernel never ran (a failed submit) is a refusal
        written.Clear();
        ring.SubmitAndWait(out _);
        while (ring.TryComplete(out uint slot, out int result))
        {
            if (slot >= (uint)count) continue;
            Interop.IoVec* v = _iov + 2 * (int)slot;
            written[(int)slot] = result == (int)(v[0].Length + v[1].Length);
        }
        for (int i = 0; i < count; i++)
            if (!written[i]) Refused(_counters[i]!, _segments[i]);
        Array.Clear(_counters, 0, count); // hold no counters of a network that may go away
    }

    private static void Refused(TrafficCounters c, int segments)
    {
        c.DeliveredFrames -= segments;
        c.Drops[(int)DropReason.EndpointWriteFailed] += segments;
    }

    public void Dispose()
    {
        if (_iov is not null) NativeMemory.AlignedFree(_iov);
        if (_headers is not null) NativeMemory.AlignedFree(_headers);
        _iov = null;
        _headers = null;
        _ring = null;
    }
}
