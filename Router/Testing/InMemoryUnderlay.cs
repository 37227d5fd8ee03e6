using System.Collections.Concurrent;

namespace UserOverlay.Router.Testing;

/// <summary>
/// An in-memory underlay network: every <see cref="InMemoryUnderlay"/> attached to it has a VTEP
/// address, and datagrams sent to an address are queued for the underlay attached there
/// (dropped when none is). Tests can also inject datagrams from any source address to play a
/// hostile or foreign VTEP. Thread-safe.
/// </summary>
public sealed class InMemoryUnderlayNetwork
{
    private readonly ConcurrentDictionary<VtepEndpoint, InMemoryUnderlay> _attached = new();

    /// <summary>Datagrams sent to an address nobody is attached to.</summary>
    public long Undeliverable;

    /// <summary>Attaches a new underlay at <paramref name="local"/>.</summary>
    public InMemoryUnderlay Attach(VtepEndpoint local)
    {
        var u = new InMemoryUnderlay(this, local);
        if (!_attached.TryAdd(local, u)) throw new InvalidOperationException($"{local} is already attached");
        return u;
    }

    internal void Detach(InMemoryUnderlay u) => _attached.TryRemove(u.LocalEndpoint, out _);

    /// <summary>Delivers <paramref name="payload"/> to whoever is attached at <paramref name="to"/>, as if sent from <paramref name="from"/>.</summary>
    public bool Deliver(VtepEndpoint from, VtepEndpoint to, ReadOnlySpan<byte> payload)
    {
        if (_attached.TryGetValue(to, out var u) && u.Enqueue(from, payload)) return true;
        Interlocked.Increment(ref Undeliverable);
        return false;
    }
}

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

/// <summary>
/// A platform made of test doubles: <see cref="ChannelTap"/>s (looked up by namespace and name
/// with <see cref="Tap"/>) and underlays on one <see cref="InMemoryUnderlayNetwork"/>.
/// </summary>
public sealed class InMemoryPlatform(InMemoryUnderlayNetwork network) : IRouterPlatform
{
    private readonly ConcurrentDictionary<(string Netns, string Name), ChannelTap> _taps = new();

    /// <summary>The underlay network the platform's underlays attach to.</summary>
    public InMemoryUnderlayNetwork Network { get; } = network;

    /// <summary>The last underlay this platform opened.</summary>
    public InMemoryUnderlay? Underlay { get; private set; }

    public ITapDevice CreateTap(TapRequest request)
    {
        var tap = new ChannelTap(request.Name);
        _taps[(request.Netns, request.Name)] = tap;
        return tap;
    }

    public IUnderlay OpenUnderlay(VtepEndpoint local, int batchSize) => Underlay = Network.Attach(local);

    /// <summary>The last ESP underlay this platform opened (attached at port 0 for transport mode, else the ESP-in-UDP port).</summary>
    public InMemoryUnderlay? EspUnderlay { get; private set; }

    public IUnderlay OpenEspUnderlay(VtepEndpoint local, int udpPort, int batchSize) =>
        EspUnderlay = Network.Attach(local with { Port = (ushort)udpPort });

    /// <summary>The TAP created for an endpoint.</summary>
    public ChannelTap Tap(string netns, string name = "eth0") => _taps[(netns, name)];
}
