using System.Collections.Concurrent;
using UserOverlay.Router.Linux;

namespace UserOverlay.Router.Testing;

/// <summary>
/// An in-memory <see cref="IUnderlay"/> (wireguard-go's bindtest): Send hands copies to the
/// <see cref="InMemoryUnderlayNetwork"/>; Receive takes from a queue whose readiness is an eventfd,
/// so the router's real epoll loop drives it. Every datagram sent is also recorded in
/// <see cref="Sent"/> when <see cref="RecordSent"/> is on. Allocates per datagram (a test double,
/// not the data path). Thread-safe.
/// </summary>
public sealed class InMemoryUnderlay : IUnderlay
{
    private const int Capacity = 65536;
    private readonly InMemoryUnderlayNetwork _network;
    private readonly ConcurrentQueue<(VtepEndpoint From, byte[] Payload)> _queue = new();
    private readonly EventFd _event = new();
    private volatile bool _closed;

    internal InMemoryUnderlay(InMemoryUnderlayNetwork network, VtepEndpoint local)
    {
        _network = network;
        LocalEndpoint = local;
    }

    public System.Runtime.InteropServices.SafeHandle ReadinessHandle => _event.Handle;

    public VtepEndpoint LocalEndpoint { get; }

    /// <summary>Record every sent datagram in <see cref="Sent"/>.</summary>
    public bool RecordSent { get; set; }

    /// <summary>Datagrams sent (destination, bytes), when <see cref="RecordSent"/> is on.</summary>
    public ConcurrentQueue<(VtepEndpoint To, byte[] Payload)> Sent { get; } = new();

    internal bool Enqueue(VtepEndpoint from, ReadOnlySpan<byte> payload)
    {
        if (_closed || _queue.Count >= Capacity) return false; // a full socket buffer drops
        _queue.Enqueue((from, payload.ToArray()));
        _event.Signal();
        return true;
    }

    public int Receive(Span<UnderlayDatagram> datagrams, int offset)
    {
        _event.Reset(); // reset readiness first, then drain: no lost wake-ups
        int n = 0;
        while (n < datagrams.Length && _queue.TryDequeue(out var item))
            Fill(ref datagrams[n++], item, offset);
        if (!_queue.IsEmpty) _event.Signal();
        return n;
    }

    private static void Fill(ref UnderlayDatagram d, (VtepEndpoint From, byte[] Payload) item, int offset)
    {
        int room = d.Buffer.Capacity - offset;
        int len = Math.Min(room, item.Payload.Length);
        item.Payload.AsSpan(0, len).CopyTo(d.Buffer.Span[offset..]);
        d.Offset = offset;
        d.Length = len;
        d.Peer = item.From;
        d.Truncated = item.Payload.Length > room;
        d.SegmentSize = 0;
    }

    /// <summary>True: a GSO send (SegmentSize) is cut into wire datagrams, as the kernel does; receives are never coalesced.</summary>
    public bool SupportsSegmentation => true;

    public int Send(ReadOnlySpan<UnderlayDatagram> datagrams)
    {
        foreach (ref readonly var d in datagrams)
        {
            var all = d.Buffer.Span.Slice(d.Offset, d.Length);
            int size = d.SegmentSize > 0 ? d.SegmentSize : d.Length;
            for (int at = 0; at < all.Length; at += size)
            {
                var bytes = all.Slice(at, Math.Min(size, all.Length - at));
                if (RecordSent) Sent.Enqueue((d.Peer, bytes.ToArray()));
                _network.Deliver(LocalEndpoint, d.Peer, bytes);
            }
        }
        return 0;
    }

    public void Dispose()
    {
        _closed = true;
        _network.Detach(this);
        _event.Dispose();
    }
}
