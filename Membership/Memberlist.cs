// A SWIM member with the Lifeguard extensions, speaking memberlist's wire protocol.
//
// Shape (memberlist's, translated): the node table lives under one lock (_stateLock); four
// background loops run as async tasks: packet receive (pings, acks, nacks, indirect pings handled
// inline; alive/suspect/dead/user handed off), handoff (state changes, user messages, in order,
// alive first), stream accept (push/pull, TCP pings, reliable user messages, one task per stream),
// and the schedulers (probe, gossip, push/pull). Events go to the embedder through one ordered
// event task, never under the lock.
//
// Files: Memberlist.cs (lifecycle, public API), Memberlist.State.cs (the state machine: probe,
// suspect, dead, alive, refute, gossip, push/pull merge), Memberlist.Net.cs (encoding, sending,
// receiving, streams).

using System.Net;
using System.Net.Sockets;
using System.Threading.Channels;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using UserOverlay.Membership.Transport;
using UserOverlay.Membership.Wire;

namespace UserOverlay.Membership;

/// <summary>
/// A cluster member: SWIM failure detection with Lifeguard, gossip dissemination and TCP
/// anti-entropy, on memberlist's wire protocol (serf and Docker's NetworkDB can be peers).
/// Create with <see cref="CreateAsync"/>, then <see cref="JoinAsync(IEnumerable{string}, CancellationToken)"/>;
/// finish with <see cref="LeaveAsync"/> (graceful) and <see cref="DisposeAsync"/>.
/// All public members are thread-safe.
/// </summary>
public sealed partial class Memberlist : IAsyncDisposable
{
    private readonly MembershipOptions _opt;
    private readonly ILogger _log;
    private readonly IMembershipTransport _transport;
    private readonly CancellationTokenSource _shutdown = new();
    private readonly Awareness _awareness;
    private readonly TransmitLimitedQueue _broadcasts;
    private readonly Channel<Action> _events = Channel.CreateUnbounded<Action>(new UnboundedChannelOptions { SingleReader = true });
    private readonly List<Task> _loops = [];

    // Node table, guarded by _stateLock.
    private readonly Lock _stateLock = new();
    private readonly List<NodeState> _nodes = [];
    private readonly Dictionary<string, NodeState> _nodeMap = new(StringComparer.Ordinal);
    private readonly Dictionary<string, Suspicion> _nodeTimers = new(StringComparer.Ordinal);
    private readonly Dictionary<string, (IPEndPoint EndPoint, long FailedAt)> _reaped = new(StringComparer.Ordinal);
    private int _probeIndex;
    private volatile int _numNodes;

    private int _sequenceNum;
    private int _incarnation;
    private volatile bool _leaving;
    private int _disposed;
    private readonly SemaphoreSlim _leaveLock = new(1, 1);
    private TaskCompletionSource? _leaveBroadcast;

    private Memberlist(MembershipOptions opt, IMembershipTransport transport, ILogger log)
    {
        _opt = opt;
        _transport = transport;
        _log = log;
        _awareness = new Awareness(opt.AwarenessMaxMultiplier);
        _broadcasts = new TransmitLimitedQueue(() => _numNodes, opt.RetransmitMult);
        Name = opt.Name;
        var adv = opt.AdvertiseAddress ?? PickAdvertiseAddress(opt.BindAddress, transport.LocalEndPoint.Address);
        AdvertiseEndPoint = new IPEndPoint(adv, opt.AdvertisePort ?? transport.LocalEndPoint.Port);
        _handoff = new HandoffQueue(opt.HandoffQueueDepth);
    }

    /// <summary>This node's name.</summary>
    public string Name { get; }

    /// <summary>The address and port other members use to reach us.</summary>
    public IPEndPoint AdvertiseEndPoint { get; }

    /// <summary>Failure-detector counters.</summary>
    public MembershipStats Stats { get; } = new();

    /// <summary>Drop counters, per reason.</summary>
    public DropCounters Drops { get; } = new();

    /// <summary>Local health score (0 is healthy, up to AwarenessMaxMultiplier − 1). Timeouts scale by score + 1.</summary>
    public int HealthScore => _awareness.Score;

    /// <summary>Estimated cluster size: members known, including dead ones not yet reaped.</summary>
    public int EstimatedMemberCount => _numNodes;

    /// <summary>The options this member runs with.</summary>
    public MembershipOptions Options => _opt;

    /// <summary>
    /// Creates a member, binds its transport (<see cref="MembershipOptions.Transport"/> or UDP+TCP on
    /// BindAddress:BindPort), announces itself to itself (an OnJoin for the local node) and starts
    /// the background loops. It knows no one until <see cref="JoinAsync(IEnumerable{string}, CancellationToken)"/>
    /// or until someone joins it.
    /// </summary>
    public static Task<Memberlist> CreateAsync(MembershipOptions options, ILoggerFactory? loggerFactory = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(options);
        options.Validate();
        cancellationToken.ThrowIfCancellationRequested();
        var transport = options.Transport ?? NetTransport.Bind(options.BindAddress, options.BindPort);
        var log = (ILogger?)loggerFactory?.CreateLogger("UserOverlay.Membership") ?? NullLogger.Instance;
        var m = new Memberlist(options, transport, log);
        m.Start();
        return Task.FromResult(m);
    }

    private static IPAddress PickAdvertiseAddress(IPAddress bind, IPAddress bound)
    {
        if (!bind.Equals(IPAddress.Any) && !bind.Equals(IPAddress.IPv6Any)) return bind;
        if (!bound.Equals(IPAddress.Any) && !bound.Equals(IPAddress.IPv6Any)) return bound;
        foreach (var ni in System.Net.NetworkInformation.NetworkInterface.GetAllNetworkInterfaces())
        {
            if (ni.OperationalStatus != System.Net.NetworkInformation.OperationalStatus.Up) continue;
            foreach (var ua in ni.GetIPProperties().UnicastAddresses)
            {
                if (ua.Address.AddressFamily == AddressFamily.InterNetwork && !IPAddress.IsLoopback(ua.Address))
                    return ua.Address;
            }
        }
        throw new InvalidOperationException("no address to advertise: set MembershipOptions.AdvertiseAddress");
    }

    private void Start()
    {
        // setAlive: announce ourselves with incarnation 1.
        var meta = ReadLocalMeta();
        var alive = new AliveMessage(NextIncarnation(), Name, AddressBytes(AdvertiseEndPoint.Address), (ushort)AdvertiseEndPoint.Port, meta, LocalVersions.ToVsn());
        AliveNode(alive, null, bootstrap: true);

        var ct = _shutdown.Token;
        _loops.Add(Task.Run(() => EventLoopAsync()));
        _loops.Add(Task.Run(() => PacketLoopAsync(ct)));
        _loops.Add(Task.Run(() => StreamLoopAsync(ct)));
        _loops.Add(Task.Run(() => HandoffLoopAsync(ct)));
        _loops.Add(Task.Run(() => TickerAsync(_opt.ProbeInterval, ProbeAsync, ct)));
        if (_opt.GossipInterval > TimeSpan.Zero && _opt.GossipNodes > 0)
            _loops.Add(Task.Run(() => TickerAsync(_opt.GossipInterval, GossipAsync, ct)));
        if (_opt.PushPullInterval > TimeSpan.Zero)
            _loops.Add(Task.Run(() => PushPullLoopAsync(ct)));
        if (_opt.ReconnectInterval > TimeSpan.Zero)
            _loops.Add(Task.Run(() => TickerAsync(_opt.ReconnectInterval, ReconnectAsync, ct)));
    }

    internal ProtocolVersions LocalVersions => new(ProtocolConstants.ProtocolVersionMin, ProtocolConstants.ProtocolVersionMax, _opt.ProtocolVersion,
        _opt.DelegateProtocolMin, _opt.DelegateProtocolMax, _opt.DelegateProtocolVersion);

    private byte[] ReadLocalMeta()
    {
        if (_opt.Delegate is null) return [];
        Span<byte> buf = stackalloc byte[ProtocolConstants.MetaMaxSize];
        int n = _opt.Delegate.WriteNodeMeta(buf);
        if (n < 0 || n > ProtocolConstants.MetaMaxSize) throw new InvalidOperationException($"node meta must be at most {ProtocolConstants.MetaMaxSize} bytes");
        return buf[..n].ToArray();
    }

    internal static byte[] AddressBytes(IPAddress a) =>
        a.IsIPv4MappedToIPv6 ? a.MapToIPv4().GetAddressBytes() : a.GetAddressBytes();

    /// <summary>This node as the cluster sees it.</summary>
    public MemberInfo LocalMember
    {
        get { lock (_stateLock) return _nodeMap[Name].ToInfo(); }
    }

    /// <summary>Every member known, in any state (dead and left ones until they are reaped), this node included. A snapshot.</summary>
    public IReadOnlyList<MemberInfo> AllMembers
    {
        get { lock (_stateLock) return _nodes.Select(n => n.ToInfo()).OrderBy(n => n.Name, StringComparer.Ordinal).ToList(); }
    }

    /// <summary>Live members (alive or suspect), this node included — memberlist's Members(). A snapshot.</summary>
    public IReadOnlyList<MemberInfo> Members
    {
        get
        {
            lock (_stateLock)
                return _nodes.Where(n => n.State is MemberState.Alive or MemberState.Suspect).Select(n => n.ToInfo()).OrderBy(n => n.Name, StringComparer.Ordinal).ToList();
        }
    }

    /// <summary>Number of live members (alive or suspect), this node included.</summary>
    public int NumMembers
    {
        get { lock (_stateLock) return _nodes.Count(n => n.State is MemberState.Alive or MemberState.Suspect); }
    }

    /// <summary>One member by name, or null.</summary>
    public MemberInfo? GetMember(string name)
    {
        lock (_stateLock) return _nodeMap.TryGetValue(name, out var n) ? n.ToInfo() : null;
    }

    /// <summary>
    /// Joins a cluster through seed addresses (<c>host</c>, <c>host:port</c>, <c>[v6]:port</c>; the port
    /// defaults to 7946): a TCP push/pull with each seed. Retries the whole list up to
    /// <see cref="MembershipOptions.JoinMaxAttempts"/> times, <see cref="MembershipOptions.JoinRetryInterval"/> apart,
    /// until at least one seed answered. Returns the number of seeds that answered; throws
    /// <see cref="MembershipJoinException"/> when none did.
    /// </summary>
    public async Task<int> JoinAsync(IEnumerable<string> seeds, CancellationToken cancellationToken = default)
    {
        var list = seeds.ToList();
        var errors = new List<string>();
        for (int attempt = 1; ; attempt++)
        {
            var endpoints = new List<IPEndPoint>();
            foreach (var s in list)
            {
                try { endpoints.AddRange(await SeedAddress.ResolveAsync(s, ProtocolConstants.DefaultPort, cancellationToken).ConfigureAwait(false)); }
                catch (Exception e) when (e is SocketException or FormatException or ArgumentException)
                {
                    errors.Add($"{s}: {e.Message}");
                }
            }
            int ok = await JoinOnceAsync(endpoints, errors, cancellationToken).ConfigureAwait(false);
            if (ok > 0) return ok;
            if (attempt >= _opt.JoinMaxAttempts)
                throw new MembershipJoinException($"failed to join any of {list.Count} seed(s): {string.Join("; ", errors.TakeLast(list.Count))}");
            await Task.Delay(_opt.JoinRetryInterval, cancellationToken).ConfigureAwait(false);
        }
    }

    /// <summary>Joins through seed endpoints (see <see cref="JoinAsync(IEnumerable{string}, CancellationToken)"/>).</summary>
    public async Task<int> JoinAsync(IEnumerable<IPEndPoint> seeds, CancellationToken cancellationToken = default)
    {
        var list = seeds.ToList();
        var errors = new List<string>();
        for (int attempt = 1; ; attempt++)
        {
            int ok = await JoinOnceAsync(list, errors, cancellationToken).ConfigureAwait(false);
            if (ok > 0) return ok;
            if (attempt >= _opt.JoinMaxAttempts)
                throw new MembershipJoinException($"failed to join any of {list.Count} seed(s): {string.Join("; ", errors.TakeLast(list.Count))}");
            await Task.Delay(_opt.JoinRetryInterval, cancellationToken).ConfigureAwait(false);
        }
    }

    private async Task<int> JoinOnceAsync(List<IPEndPoint> endpoints, List<string> errors, CancellationToken ct)
    {
        int ok = 0;
        foreach (var ep in endpoints)
        {
            try
            {
                await PushPullNodeAsync(ep, join: true, ct).ConfigureAwait(false);
                ok++;
            }
            catch (Exception e) when (e is not OperationCanceledException || !ct.IsCancellationRequested)
            {
                errors.Add($"{ep}: {e.Message}");
                Log.JoinFailed(_log, Name, ep.ToString(), e.Message);
            }
        }
        return ok;
    }

    /// <summary>
    /// Leaves gracefully: broadcasts a dead message about ourselves (From == Node, which others record
    /// as left) and waits until it has been gossiped (or <paramref name="timeout"/>). The member keeps
    /// answering until disposed. Idempotent.
    /// </summary>
    public async Task LeaveAsync(TimeSpan timeout, CancellationToken cancellationToken = default)
    {
        await _leaveLock.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            if (_leaving) return;
            _leaving = true;
            var done = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            bool anyAlive;
            lock (_stateLock)
            {
                if (!_nodeMap.TryGetValue(Name, out var me)) return;
                _leaveBroadcast = done;
                DeadNode(new SuspectOrDeadMessage(me.Incarnation, Name, Name));
                anyAlive = _nodes.Any(n => n.Name != Name && n.State is MemberState.Alive or MemberState.Suspect);
            }
            if (anyAlive)
            {
                try { await done.Task.WaitAsync(timeout, cancellationToken).ConfigureAwait(false); }
                catch (TimeoutException) { throw new TimeoutException("timed out waiting for the leave broadcast"); }
            }
        }
        finally
        {
            _leaveLock.Release();
        }
    }

    /// <summary>
    /// Re-reads the node meta from <see cref="IMembershipDelegate.WriteNodeMeta"/> and gossips it
    /// with a new incarnation; waits until the broadcast went out (or <paramref name="timeout"/>).
    /// </summary>
    public async Task UpdateNodeMetaAsync(TimeSpan timeout, CancellationToken cancellationToken = default)
    {
        var meta = ReadLocalMeta();
        var done = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        bool anyAlive;
        lock (_stateLock)
        {
            var me = _nodeMap[Name];
            var a = new AliveMessage(NextIncarnation(), Name, me.Addr, me.Port, meta, LocalVersions.ToVsn());
            AliveNode(a, done, bootstrap: true);
            anyAlive = _nodes.Any(n => n.Name != Name && n.State is MemberState.Alive or MemberState.Suspect);
        }
        if (anyAlive)
            await done.Task.WaitAsync(timeout, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>Sends a user message over UDP, best effort, unencrypted only if no keyring. At most UdpBufferSize bytes after framing.</summary>
    public ValueTask SendBestEffortAsync(IPEndPoint to, ReadOnlyMemory<byte> message, CancellationToken cancellationToken = default) =>
        RawSendPacketAsync(to, null, MessageCodec.EncodeUserPacket(message.Span), cancellationToken);

    /// <summary>Sends a user message over TCP (reliable, any size up to 20 MB). Throws if the member cannot be reached within TcpTimeout.</summary>
    public async Task SendReliableAsync(IPEndPoint to, ReadOnlyMemory<byte> message, CancellationToken cancellationToken = default)
    {
        using var cts = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, _shutdown.Token);
        cts.CancelAfter(_opt.TcpTimeout);
        await using var s = await _transport.DialAsync(to, _opt.TcpTimeout, cts.Token).ConfigureAwait(false);
        await RawSendStreamAsync(s, MessageCodec.EncodeUserStream(message.Span), cts.Token).ConfigureAwait(false);
    }

    /// <summary>Runs one push/pull (full state exchange) with <paramref name="to"/> now.</summary>
    public Task PushPullAsync(IPEndPoint to, CancellationToken cancellationToken = default) => PushPullNodeAsync(to, join: false, cancellationToken);

    /// <summary>Queues one of the embedder's messages for gossip (framed as a user message) — memberlist's own queue, with its retransmit limit.</summary>
    public void QueueUserBroadcast(byte[] message, string? name = null, Action? finished = null) =>
        _broadcasts.Queue(MessageCodec.EncodeUserPacket(message), name is null ? null : "user:" + name, finished);

    /// <summary>
    /// Stops without leaving: the transport closes, loops end; others will detect the failure. Call
    /// <see cref="LeaveAsync"/> first for a graceful exit. Idempotent.
    /// </summary>
    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0) return;
        _shutdown.Cancel();
        await _transport.DisposeAsync().ConfigureAwait(false);
        _handoff.Complete();
        _events.Writer.TryComplete();
        lock (_stateLock)
        {
            foreach (var t in _nodeTimers.Values) t.Dispose();
            _nodeTimers.Clear();
        }
        try { await Task.WhenAll(_loops).WaitAsync(TimeSpan.FromSeconds(5)).ConfigureAwait(false); }
        catch (Exception) { }
    }

    private bool IsShutdown => _shutdown.IsCancellationRequested;

    private uint NextSeqNo() => unchecked((uint)Interlocked.Increment(ref _sequenceNum));
    private uint NextIncarnation() => unchecked((uint)Interlocked.Increment(ref _incarnation));
    private uint SkipIncarnation(uint offset) => unchecked((uint)Interlocked.Add(ref _incarnation, (int)offset));

    private void QueueEvent(Action a) => _events.Writer.TryWrite(a);

    private async Task EventLoopAsync()
    {
        await foreach (var a in _events.Reader.ReadAllAsync().ConfigureAwait(false))
        {
            try { a(); }
            catch (Exception e) { Log.DelegateFailed(_log, Name, e); }
        }
    }

    /// <summary>Runs <paramref name="work"/> every <paramref name="interval"/> after a random stagger; a slow run makes the next tick come at once (missed ticks coalesce), as Go's ticker.</summary>
    private async Task TickerAsync(TimeSpan interval, Func<CancellationToken, Task> work, CancellationToken ct)
    {
        try
        {
            await Task.Delay(Scaling.RandomStagger(interval), ct).ConfigureAwait(false);
            using var timer = new PeriodicTimer(interval);
            while (await timer.WaitForNextTickAsync(ct).ConfigureAwait(false))
            {
                try { await work(ct).ConfigureAwait(false); }
                catch (OperationCanceledException) when (ct.IsCancellationRequested) { return; }
                catch (Exception e) { Log.HandlerFailed(_log, Name, "scheduler", e); }
            }
        }
        catch (OperationCanceledException) { }
    }

    private async Task PushPullLoopAsync(CancellationToken ct)
    {
        try
        {
            await Task.Delay(Scaling.RandomStagger(_opt.PushPullInterval), ct).ConfigureAwait(false);
            while (!ct.IsCancellationRequested)
            {
                await Task.Delay(Scaling.PushPullScale(_opt.PushPullInterval, _numNodes), ct).ConfigureAwait(false);
                await PeriodicPushPullAsync(ct).ConfigureAwait(false);
            }
        }
        catch (OperationCanceledException) { }
    }

    private static long Now => Environment.TickCount64;

    /// <summary>One entry of the node table. Mutated only under _stateLock.</summary>
    internal sealed class NodeState
    {
        public required string Name;
        public required byte[] Addr;
        public ushort Port;
        public byte[] Meta = [];
        public uint Incarnation;
        public MemberState State;
        public long StateChange = Now;
        public DateTimeOffset StateChangeUtc = DateTimeOffset.UtcNow;
        public ProtocolVersions Vsn;

        public bool DeadOrLeft => State is MemberState.Dead or MemberState.Left;
        public IPEndPoint EndPoint => new(new IPAddress(Addr), Port);

        public void SetState(MemberState s)
        {
            State = s;
            StateChange = Now;
            StateChangeUtc = DateTimeOffset.UtcNow;
        }

        public MemberInfo ToInfo() => new(Name, new IPAddress(Addr), Port, State, Incarnation, Meta, Vsn, StateChangeUtc);
    }
}
