using System.Net;
using System.Net.Sockets;
using System.Runtime.CompilerServices;
using Microsoft.Extensions.Logging;
using UserOverlay.Router;

namespace UserOverlay.Dns;

// The DNS responder at every network's gateway address, port 53, answered on the TAP beside proxy ARP:
//
//  1. Pipeline (OnFrame, any worker): a frame to the gateway MAC that is IPv4 to the gateway address, UDP or TCP port 53,
//     is copied into a slot of a bounded queue and the worker is signalled. A full queue drops the frame (queue_full):
//     forwarding never waits for DNS. Nothing allocates; the lock is held for one copy of at most SlotSize bytes.
//  2. DNS worker (one thread, "dns"): takes a frame, checks IPv4/UDP, answers the query (DnsAnswerer) and writes the
//     answer frame straight to the asker's TAP (OverlayRouter.InjectFrame). An answer too large for UDP goes with TC=1
//     and the records that fit. A TCP segment goes to DnsTcp, the worker's minimal TCP for DNS over TCP (RFC 7766).
//  3. Forwarding: a name that is not the network's goes to the upstream resolvers over a UDP socket of the daemon's
//     namespace, with a fresh random id; the answer comes back on a receive loop, gets the asker's id back and is
//     written to the asker's TAP. A query unanswered after UpstreamTimeout goes to the next upstream, and after the last
//     the asker gets SERVFAIL (upstream_timeout). At most MaxPending queries wait (upstream_busy beyond: SERVFAIL).
//
// Bounded: the queue (QueueCapacity slots), the pending table, one worker thread. Every drop has a reason (DnsDropReason).

/// <summary>How a <see cref="DnsResponder"/> runs.</summary>
public sealed record DnsResponderOptions
{
    /// <summary>Upstream resolvers for names that are not the network's (none: such names get NXDOMAIN).</summary>
    public IReadOnlyList<IPEndPoint> Upstreams { get; init; } = [];
    /// <summary>Frames waiting for the DNS worker (each slot holds <see cref="DnsResponder.SlotSize"/> bytes).</summary>
    public int QueueCapacity { get; init; } = 512;
    /// <summary>How long an upstream resolver has to answer before the next is asked.</summary>
    public TimeSpan UpstreamTimeout { get; init; } = TimeSpan.FromSeconds(2);
    /// <summary>Queries waiting for an upstream answer at most.</summary>
    public int MaxPending { get; init; } = 1024;
}

/// <summary>Delivers a frame to the local endpoint it is addressed to (<see cref="OverlayRouter.InjectFrame"/>).</summary>
public delegate bool FrameInjector(string network, ReadOnlySpan<byte> frame);

/// <summary>
/// The DNS responder (see the flow above): an <see cref="IGatewayHandler"/> for the router. Thread-safe: <see cref="OnFrame"/>
/// is called by every pipeline worker; <see cref="SetNetwork"/> by the control plane.
/// </summary>
public sealed class DnsResponder : IGatewayHandler, IDisposable
{
    /// <summary>Bytes a queued frame may have: a query of the largest UDP size the responder takes, with its headers.</summary>
    public const int SlotSize = 2048;

    private readonly NameRegistry _names;
    private readonly FrameInjector _inject;
    private readonly DnsResponderOptions _options;
    private readonly ILogger? _log;
    private readonly DnsAnswerer _answerer;
    private readonly ConditionalWeakTable<GatewayNetwork, DnsAnswerer.NetworkContext> _contexts = [];
    private readonly Dictionary<string, (uint Subnet, int Prefix, bool Internal)> _networks = new(StringComparer.Ordinal); // under _networksLock
    private readonly Lock _networksLock = new();

    // The queue: a ring of fixed slots, under _queueLock; _signal counts the frames in it.
    private readonly Lock _queueLock = new();
    private readonly byte[][] _slots;
    private readonly int[] _lengths;
    private readonly byte[] _protocols;
    private readonly GatewayNetwork?[] _slotNetworks;
    private int _head, _count;
    private readonly SemaphoreSlim _signal = new(0);

    private readonly byte[] _frame = new byte[SlotSize];
    private readonly byte[] _reply = new byte[SlotSize];
    private readonly Thread _worker;
    private readonly CancellationTokenSource _stop = new();
    private readonly Upstream? _upstream;
    private readonly DnsTcp _tcp; // the worker's only
    private long _lastSweep = Environment.TickCount64;

    /// <summary>Counters of the responder.</summary>
    public DnsCounters Counters { get; } = new();

    /// <summary>The names it answers.</summary>
    public NameRegistry Names => _names;

    /// <summary>The upstream resolvers in use.</summary>
    public IReadOnlyList<IPEndPoint> Upstreams => _options.Upstreams;

    /// <summary>Starts the worker (and, with upstreams, the upstream socket). Set it as the router's <see cref="OverlayRouter.GatewayHandler"/>.</summary>
    public DnsResponder(NameRegistry names, FrameInjector inject, DnsResponderOptions? options = null, ILogger? log = null)
    {
        _names = names;
        _inject = inject;
        _options = options ?? new DnsResponderOptions();
        _log = log;
        if (_options.QueueCapacity < 1) throw new ArgumentOutOfRangeException(nameof(options), "QueueCapacity must be at least 1");
        _answerer = new DnsAnswerer(names);
        _slots = new byte[_options.QueueCapacity][];
        for (int i = 0; i < _slots.Length; i++) _slots[i] = new byte[SlotSize];
        _lengths = new int[_slots.Length];
        _protocols = new byte[_slots.Length];
        _slotNetworks = new GatewayNetwork?[_slots.Length];
        if (_options.Upstreams.Count > 0) _upstream = new Upstream(this);
        _tcp = new DnsTcp(this, _answerer, inject, Counters);
        _worker = new Thread(Run) { Name = "dns", IsBackground = true };
        _worker.Start();
    }

    /// <summary>
    /// What the responder needs of a network beyond its gateway: its subnet (an address of it nobody has gets NXDOMAIN,
    /// not forwarded) and whether it is internal (nothing forwarded). A network never set forwards and has no subnet.
    /// </summary>
    public void SetNetwork(string network, uint subnet, int prefixLength, bool isInternal)
    {
        lock (_networksLock) _networks[network] = (subnet, prefixLength, isInternal);
        _contexts.Clear();
    }

    /// <summary>Forgets a network (its names too).</summary>
    public void RemoveNetwork(string network)
    {
        lock (_networksLock) _networks.Remove(network);
        _contexts.Clear();
        _names.RemoveNetwork(network);
    }

    /// <inheritdoc/>
    public int OnFrame(GatewayNetwork network, ReadOnlySpan<byte> frame, Span<byte> reply)
    {
        byte proto = DnsFrames.Classify(frame, network.Address);
        if (proto == 0) return -1;
        if (frame.Length > SlotSize) { Counters.Drop(DnsDropReason.Oversized); return 0; }
        lock (_queueLock)
        {
            if (_count == _slots.Length) { Counters.Drop(DnsDropReason.QueueFull); return 0; }
            int i = (_head + _count) % _slots.Length;
            frame.CopyTo(_slots[i]);
            _lengths[i] = frame.Length;
            _protocols[i] = proto;
            _slotNetworks[i] = network;
            _count++;
        }
        _signal.Release();
        return 0;
    }

    private void Run()
    {
        var ct = _stop.Token;
        while (!ct.IsCancellationRequested)
        {
            bool got;
            try { got = _signal.Wait(1000, ct); }
            catch (OperationCanceledException) { return; }
            long now = Environment.TickCount64;
            if (now - _lastSweep >= 1000)
            {
                _lastSweep = now;
                _tcp.Sweep();
            }
            if (!got) continue;
            int length;
            byte proto;
            GatewayNetwork net;
            lock (_queueLock)
            {
                if (_count == 0) continue;
                int i = _head;
                length = _lengths[i];
                proto = _protocols[i];
                net = _slotNetworks[i]!;
                _slots[i].AsSpan(0, length).CopyTo(_frame);
                _slotNetworks[i] = null;
                _head = (_head + 1) % _slots.Length;
                _count--;
            }
            try { Process(net, _frame.AsSpan(0, length), proto); }
            catch (Exception e) when (e is not OutOfMemoryException)
            {
                Counters.Drop(DnsDropReason.Unparsable); // a bug or a message the checks let through: counted, the worker goes on
                if (_log?.IsEnabled(LogLevel.Debug) == true) _log.LogDebug(e, "DNS query on network {Network} failed", net.Network);
            }
        }
    }

    /// <summary>Answers one frame (the worker's step 2). Internal for the benchmark, which calls it on its own thread.</summary>
    internal void Process(GatewayNetwork net, ReadOnlySpan<byte> frame, byte proto)
    {
        if (proto == DnsFrames.ProtoTcp)
        {
            _tcp.OnSegment(net, frame);
            return;
        }
        if (!DnsFrames.TryParseUdp(frame, out var d, out var why)) { Counters.Drop(why); return; }
        Interlocked.Increment(ref Counters.QueriesReceived);
        var ctx = Context(net);
        var outcome = _answerer.Answer(ctx, d.Payload, _reply.AsSpan(DnsFrames.UdpPayloadOffset), out int length, out why, out bool nx, out bool truncated);
        switch (outcome)
        {
            case DnsOutcome.Drop:
                Counters.Drop(why);
                return;
            case DnsOutcome.Forward when _upstream is not null:
                _upstream.Forward(net, d.ClientMac, d.ClientIp, d.ClientPort, d.Payload);
                return;
            case DnsOutcome.Forward: // no upstream (the context says it forwards only with one): cannot happen, answer SERVFAIL
                length = DnsAnswerer.ServFail(d.Payload, _reply.AsSpan(DnsFrames.UdpPayloadOffset));
                break;
            default:
                Interlocked.Increment(ref nx ? ref Counters.NameErrors : ref Counters.AnsweredLocally);
                if (truncated) Interlocked.Increment(ref Counters.Truncated);
                break;
        }
        Deliver(net, d.ClientMac, d.ClientIp, d.ClientPort, _reply, length);
    }

    // The answer is at UdpPayloadOffset of buffer.
    private void Deliver(GatewayNetwork net, ulong clientMac, uint clientIp, ushort clientPort, byte[] buffer, int payloadLength)
    {
        int n = DnsFrames.WriteUdpReply(buffer, net.Mac.Value, net.Address, clientMac, clientIp, clientPort, payloadLength);
        if (!_inject(net.Network, buffer.AsSpan(0, n))) Counters.Drop(DnsDropReason.NotDelivered);
    }

    internal DnsAnswerer.NetworkContext Context(GatewayNetwork net)
    {
        if (_contexts.TryGetValue(net, out var ctx)) return ctx;
        (uint Subnet, int Prefix, bool Internal) info;
        bool known;
        lock (_networksLock) known = _networks.TryGetValue(net.Network, out info);
        ctx = new DnsAnswerer.NetworkContext(net.Network, known ? info.Subnet : 0, known ? info.Prefix : 0,
            Forwards: _upstream is not null && !(known && info.Internal), net.Mtu);
        _contexts.AddOrUpdate(net, ctx);
        return ctx;
    }

    /// <summary>Stops the worker and the upstream socket; queued frames are dropped.</summary>
    public void Dispose()
    {
        if (_stop.IsCancellationRequested) return;
        _stop.Cancel();
        _worker.Join(TimeSpan.FromSeconds(5));
        _upstream?.Dispose();
        _signal.Dispose();
        _stop.Dispose();
    }

    /// <summary>Open DNS-over-TCP connections (for tests; read it when the worker is idle).</summary>
    internal int TcpConnectionCount => _tcp.Count;

    /// <summary>Queries waiting for an upstream answer (for tests).</summary>
    internal int PendingUpstream => _upstream?.Pending ?? 0;

    /// <summary>The upstream side (step 3). Its own lock; its receive loop and timer run on the thread pool.</summary>
    private sealed class Upstream : IDisposable
    {
        private sealed record Waiting(GatewayNetwork Net, ulong ClientMac, uint ClientIp, ushort ClientPort, byte[] Query, int UpstreamIndex, long Deadline);

        private readonly DnsResponder _r;
        private readonly Socket _socket;
        private readonly Lock _lock = new();
        private readonly Dictionary<ushort, Waiting> _waiting = [];
        private readonly Timer _timer;
        private readonly byte[] _receive = new byte[65535];
        private readonly byte[] _frame = new byte[SlotSize + 65535];
        private readonly Task _loop;

        public Upstream(DnsResponder r)
        {
            _r = r;
            _socket = new Socket(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp);
            _socket.Bind(new IPEndPoint(IPAddress.Any, 0));
            _loop = Task.Run(ReceiveLoop);
            _timer = new Timer(_ => Sweep(), null, TimeSpan.FromMilliseconds(250), TimeSpan.FromMilliseconds(250));
        }

        public int Pending { get { lock (_lock) return _waiting.Count; } }

        public void Forward(GatewayNetwork net, ulong mac, uint ip, ushort port, ReadOnlySpan<byte> query)
        {
            byte[] copy = query.ToArray();
            ushort id;
            lock (_lock)
            {
                if (_waiting.Count >= _r._options.MaxPending) id = 0;
                else
                {
                    do id = (ushort)Random.Shared.Next(1, 65536); while (_waiting.ContainsKey(id));
                    _waiting[id] = new Waiting(net, mac, ip, port, copy, 0, Environment.TickCount64 + (long)_r._options.UpstreamTimeout.TotalMilliseconds);
                }
            }
            if (id == 0)
            {
                _r.Counters.Drop(DnsDropReason.UpstreamBusy);
                ServFail(net, mac, ip, port, copy);
                return;
            }
            Interlocked.Increment(ref _r.Counters.Forwarded);
            Send(copy, id, 0);
        }

        private void Send(byte[] query, ushort id, int upstream)
        {
            byte[] wire = (byte[])query.Clone();
            wire[0] = (byte)(id >> 8);
            wire[1] = (byte)id;
            try { _socket.SendTo(wire, _r._options.Upstreams[upstream]); }
            catch (SocketException) { } // unreachable: the timeout moves on to the next
            catch (ObjectDisposedException) { }
        }

        private async Task ReceiveLoop()
        {
            var from = new IPEndPoint(IPAddress.Any, 0);
            while (true)
            {
                SocketReceiveFromResult got;
                try { got = await _socket.ReceiveFromAsync(_receive, SocketFlags.None, from).ConfigureAwait(false); }
                catch (ObjectDisposedException) { return; }
                catch (SocketException) when (_r._stop.IsCancellationRequested) { return; }
                catch (SocketException) { continue; } // e.g. ICMP port unreachable reported on the socket
                try { OnAnswer(_receive.AsSpan(0, got.ReceivedBytes), (IPEndPoint)got.RemoteEndPoint); }
                catch (Exception e) when (e is not OutOfMemoryException) { _r.Counters.Drop(DnsDropReason.UpstreamUnexpected); }
            }
        }

        private void OnAnswer(ReadOnlySpan<byte> answer, IPEndPoint from)
        {
            if (answer.Length < 12) { _r.Counters.Drop(DnsDropReason.UpstreamUnexpected); return; }
            ushort id = (ushort)(answer[0] << 8 | answer[1]);
            Waiting? w;
            lock (_lock)
            {
                if (!_waiting.TryGetValue(id, out w) || !_r._options.Upstreams[w.UpstreamIndex].Equals(from) || (answer[2] & 0x80) == 0)
                {
                    _r.Counters.Drop(DnsDropReason.UpstreamUnexpected);
                    return;
                }
                _waiting.Remove(id);
            }
            int limit = Math.Min(DnsAnswerer.MaxUdpAnswer, w.Net.Mtu - DnsFrames.Ipv4Header - DnsFrames.UdpHeader);
            Span<byte> payload = _frame.AsSpan(DnsFrames.UdpPayloadOffset);
            int length = answer.Length;
            if (length > limit)
            {
                // Larger than a datagram to the asker may be: the header and question with TC=1, so a client knows.
                length = DnsAnswerer.ServFail(answer, payload);
                payload[3] = answer[3];
                payload[2] |= 0x02;
                Interlocked.Increment(ref _r.Counters.Truncated);
            }
            else answer.CopyTo(payload);
            payload[0] = w.Query[0];
            payload[1] = w.Query[1];
            Interlocked.Increment(ref _r.Counters.UpstreamAnswers);
            lock (_frame) _r.Deliver(w.Net, w.ClientMac, w.ClientIp, w.ClientPort, _frame, length);
        }

        private void ServFail(GatewayNetwork net, ulong mac, uint ip, ushort port, byte[] query)
        {
            lock (_frame)
            {
                int n = DnsAnswerer.ServFail(query, _frame.AsSpan(DnsFrames.UdpPayloadOffset));
                _r.Deliver(net, mac, ip, port, _frame, n);
            }
        }

        private void Sweep()
        {
            long now = Environment.TickCount64;
            List<(ushort Id, Waiting W)>? retry = null, failed = null;
            lock (_lock)
            {
                foreach (var (id, w) in _waiting)
                {
                    if (w.Deadline > now) continue;
                    if (w.UpstreamIndex + 1 < _r._options.Upstreams.Count) (retry ??= []).Add((id, w));
                    else (failed ??= []).Add((id, w));
                }
                if (retry is not null)
                    foreach (var (id, w) in retry)
                        _waiting[id] = w with { UpstreamIndex = w.UpstreamIndex + 1, Deadline = now + (long)_r._options.UpstreamTimeout.TotalMilliseconds };
                if (failed is not null)
                    foreach (var (id, _) in failed) _waiting.Remove(id);
            }
            if (retry is not null)
                foreach (var (id, w) in retry) Send(w.Query, id, w.UpstreamIndex + 1);
            if (failed is not null)
                foreach (var (_, w) in failed)
                {
                    _r.Counters.Drop(DnsDropReason.UpstreamTimeout);
                    ServFail(w.Net, w.ClientMac, w.ClientIp, w.ClientPort, w.Query);
                }
        }

        public void Dispose()
        {
            _timer.Dispose();
            _socket.Dispose();
            try { _loop.Wait(TimeSpan.FromSeconds(2)); } catch (AggregateException) { }
        }
    }
}
