// An in-process network for clusters in tests, benchmarks and samples (memberlist's
// mock_transport.go, plus the faults a failure detector has to face). Each transport gets the
// address 127.0.0.1 and a unique port; nothing ever touches a socket.
// Faults: random packet loss (PacketLoss), paused nodes (Pause: SIGSTOP/SIGCONT, their datagrams wait
// as in a socket buffer and are delivered on resume), frozen nodes (Freeze: a blackout, everything to
// or from them vanishes and dials time out) and killed nodes (disposed transports: dials are refused).
// A paused node's own timers keep running (only the process could stop them): on resume it may suspect
// members whose acks it "missed", as a real process whose timers fire late after SIGCONT can.
// Deliberately simple: no latency model, no reordering beyond what the thread pool does.

using System.Collections.Concurrent;
using System.Net;
using System.Net.Sockets;
using UserOverlay.Membership.Transport;

namespace UserOverlay.Membership.Testing;

/// <summary>
/// A set of in-memory transports that can reach each other. Thread-safe. Create transports with
/// <see cref="CreateTransport"/> and hand them to <see cref="MembershipOptions.Transport"/>.
/// </summary>
public sealed class InMemoryNetwork
{
    /// <summary>
    /// Fast Local timings for in-process clusters in tests (still memberlist's formulas, every period shortened), with a
    /// transport left for the caller to set (<see cref="CreateTransport"/>).
    /// </summary>
    public static MembershipOptions FastOptions(string name) => MembershipOptions.DefaultLocal() with
    {
        Name = name,
        ProbeInterval = TimeSpan.FromMilliseconds(200),
        ProbeTimeout = TimeSpan.FromMilliseconds(80),
        GossipInterval = TimeSpan.FromMilliseconds(50),
        PushPullInterval = TimeSpan.FromSeconds(3),
        TcpTimeout = TimeSpan.FromMilliseconds(500),
        GossipToTheDeadTime = TimeSpan.FromSeconds(5),
        ReconnectInterval = TimeSpan.FromSeconds(1),
        // A join is one TCP push/pull; on a loaded 2-core machine 500 ms can pass before the seed's thread runs, so
        // joins retry (as serf's `-retry-join` does) instead of failing.
        JoinMaxAttempts = 5,
        JoinRetryInterval = TimeSpan.FromMilliseconds(200),
    };

    private readonly ConcurrentDictionary<IPEndPoint, InMemoryTransport> _byAddress = new();
    private readonly ConcurrentDictionary<string, InMemoryTransport> _byName = new();
    private readonly ConcurrentDictionary<IPEndPoint, bool> _frozen = new();
    private readonly Random _random;
    private int _nextPort = 20000;
    private long _sent, _dropped;

    /// <summary>Creates a network; <paramref name="seed"/> makes packet loss reproducible.</summary>
    public InMemoryNetwork(int? seed = null) => _random = seed is { } s ? new Random(s) : new Random();

    /// <summary>Probability in [0, 1] that any datagram is lost. Streams are never lossy once connected (TCP); see <see cref="DialLoss"/>.</summary>
    public double PacketLoss { get; set; }

    /// <summary>
    /// Probability in [0, 1] that a dial's handshake is lost: the dial then completes only after TCP's
    /// first SYN retransmission (1 s), or times out if its deadline comes sooner (a TCP fallback probe's does).
    /// </summary>
    public double DialLoss { get; set; }

    /// <summary>Datagrams sent so far.</summary>
    public long PacketsSent => Interlocked.Read(ref _sent);

    /// <summary>Datagrams lost so far (loss, frozen or missing destination).</summary>
    public long PacketsDropped => Interlocked.Read(ref _dropped);

    /// <summary>Creates a transport named <paramref name="name"/> at 127.0.0.1 with a fresh port.</summary>
    public IMembershipTransport CreateTransport(string name)
    {
        var ep = new IPEndPoint(IPAddress.Loopback, Interlocked.Increment(ref _nextPort));
        var t = new InMemoryTransport(this, name, ep);
        _byAddress[ep] = t;
        _byName[name] = t;
        return t;
    }

    /// <summary>The address of the transport created as <paramref name="name"/>.</summary>
    public IPEndPoint AddressOf(string name) => _byName[name].LocalEndPoint;

    /// <summary>Freezes (or thaws) a node, a blackout: its packets vanish both ways and dials to it time out.</summary>
    public void Freeze(string name, bool frozen = true)
    {
        var ep = AddressOf(name);
        if (frozen) _frozen[ep] = true;
        else _frozen.TryRemove(ep, out _);
    }

    internal bool IsFrozen(IPEndPoint ep) => _frozen.ContainsKey(ep);

    private readonly ConcurrentDictionary<IPEndPoint, bool> _paused = new();
    private readonly List<(InMemoryTransport From, byte[] Packet, IPEndPoint To)> _held = [];

    /// <summary>Most datagrams held for paused nodes (a socket buffer's worth); more are dropped.</summary>
    public const int MaxHeldPackets = 4096;

    /// <summary>
    /// Pauses (or resumes) a node, as SIGSTOP/SIGCONT: datagrams to or from it are held, in order, and
    /// delivered when it resumes (a stopped process's socket buffer fills and is read on SIGCONT, and
    /// what it "sent" while stopped leaves then); dials to or from it wait for the resume, or time out.
    /// </summary>
    public void Pause(string name, bool paused = true)
    {
        var ep = AddressOf(name);
        if (paused)
        {
            _paused[ep] = true;
            return;
        }
        List<(InMemoryTransport From, byte[] Packet, IPEndPoint To)> release;
        lock (_held)
        {
            _paused.TryRemove(ep, out _);
            release = _held.Where(h => !IsPaused(h.From.LocalEndPoint) && !IsPaused(h.To)).ToList();
            _held.RemoveAll(h => !IsPaused(h.From.LocalEndPoint) && !IsPaused(h.To));
        }
        foreach (var (from, packet, to) in release) Deliver(from, packet, to);
    }

    internal bool IsPaused(IPEndPoint ep) => _paused.ContainsKey(ep);

    /// <summary>Holds a datagram that involves a paused node; false when it must be delivered now.</summary>
    private bool TryHold(InMemoryTransport from, ReadOnlyMemory<byte> packet, IPEndPoint to)
    {
        if (_paused.IsEmpty) return false;
        lock (_held)
        {
            if (!IsPaused(from.LocalEndPoint) && !IsPaused(to)) return false;
            if (_held.Count < MaxHeldPackets) _held.Add((from, packet.ToArray(), to));
            else Interlocked.Increment(ref _dropped);
            return true;
        }
    }

    private readonly ConcurrentDictionary<(IPEndPoint, IPEndPoint), bool> _cut = new();

    /// <summary>
    /// Cuts (or heals) the link between two nodes in both directions: their datagrams to each other
    /// vanish, and with <paramref name="streamsToo"/> their dials time out as well. Other links are untouched,
    /// so indirect probes through a third node still work.
    /// </summary>
    public void Partition(string a, string b, bool streamsToo = true, bool cut = true)
    {
        var ea = AddressOf(a);
        var eb = AddressOf(b);
        foreach (var key in new[] { (ea, eb), (eb, ea) })
        {
            if (cut) _cut[key] = streamsToo;
            else _cut.TryRemove(key, out _);
        }
    }

    private bool PacketsCut(IPEndPoint from, IPEndPoint to) => _cut.ContainsKey((from, to));
    private bool StreamsCut(IPEndPoint from, IPEndPoint to) => _cut.TryGetValue((from, to), out bool s) && s;

    internal void Deliver(InMemoryTransport from, ReadOnlyMemory<byte> packet, IPEndPoint to)
    {
        if (TryHold(from, packet, to)) return;
        Interlocked.Increment(ref _sent);
        bool lost;
        double loss = PacketLoss;
        if (loss > 0)
        {
            lock (_random) lost = _random.NextDouble() < loss;
        }
        else
        {
            lost = false;
        }
        if (lost || IsFrozen(from.LocalEndPoint) || IsFrozen(to) || PacketsCut(from.LocalEndPoint, to) || !_byAddress.TryGetValue(to, out var dest) || !dest.Receive(packet.ToArray(), from.LocalEndPoint))
            Interlocked.Increment(ref _dropped);
    }

    internal async ValueTask<Stream> DialAsync(InMemoryTransport from, IPEndPoint to, TimeSpan timeout, CancellationToken ct)
    {
        if (IsPaused(from.LocalEndPoint) || IsPaused(to))
        {
            // A stopped process: the exchange waits for SIGCONT, or the caller's deadline passes.
            long deadline = Environment.TickCount64 + (long)timeout.TotalMilliseconds;
            while (IsPaused(from.LocalEndPoint) || IsPaused(to))
            {
                if (Environment.TickCount64 >= deadline) throw new TimeoutException($"dial {to} timed out");
                await Task.Delay(10, ct).ConfigureAwait(false);
            }
            timeout = TimeSpan.FromMilliseconds(Math.Max(0, deadline - Environment.TickCount64));
        }
        double dialLoss = DialLoss;
        bool synLost = false;
        if (dialLoss > 0)
        {
            lock (_random) synLost = _random.NextDouble() < dialLoss;
        }
        if (synLost)
        {
            var retransmit = TimeSpan.FromSeconds(1);
            if (timeout < retransmit)
            {
                if (timeout > TimeSpan.Zero) await Task.Delay(timeout, ct).ConfigureAwait(false);
                throw new TimeoutException($"dial {to} timed out (handshake lost)");
            }
            await Task.Delay(retransmit, ct).ConfigureAwait(false);
            timeout -= retransmit;
        }
        if (IsFrozen(from.LocalEndPoint) || IsFrozen(to) || StreamsCut(from.LocalEndPoint, to))
        {
            // A stopped process: the connection goes nowhere, the caller's deadline passes.
            await Task.Delay(timeout, ct).ConfigureAwait(false);
            throw new TimeoutException($"dial {to} timed out");
        }
        if (!_byAddress.TryGetValue(to, out var dest) || dest.IsClosed)
            throw new SocketException((int)SocketError.ConnectionRefused);
        var (a, b) = DuplexPipeStream.CreatePair();
        if (!dest.Accept(b, from.LocalEndPoint))
        {
            await a.DisposeAsync().ConfigureAwait(false);
            throw new SocketException((int)SocketError.ConnectionRefused);
        }
        return a;
    }

    internal void Remove(InMemoryTransport t)
    {
        _byAddress.TryRemove(new KeyValuePair<IPEndPoint, InMemoryTransport>(t.LocalEndPoint, t));
    }
}
