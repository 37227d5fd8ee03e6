// A NetworkDB-like replicated endpoint table on top of a Memberlist.
//
// * Network attachments (node N is in network X) are gossiped to every member through memberlist's
//   broadcasts, so every host knows which hosts share which networks.
// * Endpoint records (MAC, IP, VTEP, owner) are gossiped only to the members attached to their
//   network (per-network queues, sent by this table's own gossip loop as best-effort user messages).
// * Both are versioned by Lamport clocks; deletes are tombstones, reaped after TombstoneTtl.
// * TCP push/pull carries the whole table (attachments and records, tombstones included), so a new
//   or returning host learns everything at join and anti-entropy repairs lost gossip.
// * A member that fails or leaves has its records and attachments dropped by everyone locally (no
//   tombstones needed: records of a dead owner are refused until it is alive again); when it comes
//   back, every host that dropped its state runs a push/pull with it.
// * A new member's own gossip can arrive before the news that it is alive: right after its join it
//   sends its records to the members of its networks, while its alive message is still spreading.
//   Records and attachments of an owner this member has never heard of are therefore held back and
//   applied when it joins (dropped after PendingTtl), not refused — refused, they would be missing
//   until the next push/pull, up to PushPullInterval later (seen in namespaces: 3 of 4 hosts refused
//   a late joiner's records, which then took a full push/pull round to arrive).
// Deliberately simple: one lock over the whole table; events are computed under it and delivered
// later by one event task. Control-plane sizes (thousands of endpoints) make that fine.

using System.Net;
using System.Threading.Channels;
using Microsoft.Extensions.Logging;
using UserOverlay.Membership.Wire;

namespace UserOverlay.Membership.Table;

/// <summary>Options of an <see cref="EndpointTable"/>.</summary>
public sealed record EndpointTableOptions
{
    /// <summary>The member's options (name, bind, keyring, timings). The table installs its own delegates (meta, user messages, state, broadcasts, events) and forwards events to <see cref="MembershipOptions.Events"/> if set.</summary>
    public required MembershipOptions Membership { get; init; }

    /// <summary>This host's VTEP address, published in node meta and in every record it owns.</summary>
    public required IPAddress VtepAddress { get; init; }

    /// <summary>This host's VXLAN data port, published in node meta. Default 4789.</summary>
    public int DataPort { get; init; } = 4789;

    /// <summary>How long deleted records and network leaves are kept (so late gossip cannot resurrect them). NetworkDB: 30 min.</summary>
    public TimeSpan TombstoneTtl { get; init; } = TimeSpan.FromMinutes(30);

    /// <summary>How often tombstones are reaped. Default 5 s.</summary>
    public TimeSpan ReapInterval { get; init; } = TimeSpan.FromSeconds(5);

    /// <summary>How long records and attachments of a not-yet-known owner are held for its join (its gossip can outrun its alive message). Default 30 s.</summary>
    public TimeSpan PendingTtl { get; init; } = TimeSpan.FromSeconds(30);

    /// <summary>Receives endpoint and flood-list changes. Optional (the table can also be polled).</summary>
    public IEndpointTableObserver? Observer { get; init; }
}

/// <summary>
/// The replicated endpoint table (NetworkDB's role in Docker's overlay): publish local endpoints,
/// observe remote ones and the per-network flood list. All public members are thread-safe.
/// </summary>
public sealed class EndpointTable : IAsyncDisposable
{
    private readonly EndpointTableOptions _opt;
    private readonly ILogger? _log;
    private readonly Lock _lock = new();
    private readonly Dictionary<(string Net, ulong Mac), (EndpointRecord Record, long StoredAt)> _endpoints = [];
    private readonly Dictionary<(string Node, string Net), (NetworkAttachment Att, long StoredAt)> _attachments = [];
    private readonly HashSet<string> _joined = new(StringComparer.Ordinal);
    private readonly Dictionary<string, List<NetworkPeer>> _lastPeers = new(StringComparer.Ordinal);
    private readonly HashSet<string> _purged = new(StringComparer.Ordinal);
    /// <summary>Hosts we exchanged the whole table with since they appeared in a network we share (one direct push/pull per pair).</summary>
    private readonly HashSet<string> _synced = new(StringComparer.Ordinal);
    /// <summary>Direct push/pulls running at once (a join storm must not open hundreds of streams).</summary>
    private readonly SemaphoreSlim _syncSlots = new(4);
    private readonly Dictionary<string, (List<object> Items, long Since)> _pending = new(StringComparer.Ordinal);
    private readonly Dictionary<string, TransmitLimitedQueue> _networkQueues = new(StringComparer.Ordinal);
    private readonly TransmitLimitedQueue _nodeQueue;
    private readonly Channel<Action> _events = Channel.CreateUnbounded<Action>(new UnboundedChannelOptions { SingleReader = true });
    private readonly CancellationTokenSource _stop = new();
    private readonly List<Task> _loops = [];
    private ulong _clock;
    private Memberlist _ml = null!;
    private readonly byte[] _meta;

    private EndpointTable(EndpointTableOptions opt, ILogger? log)
    {
        _opt = opt;
        _log = log;
        _meta = new OverlayNodeMeta(opt.VtepAddress, opt.DataPort).ToBytes();
        _nodeQueue = new TransmitLimitedQueue(() => _ml?.EstimatedMemberCount ?? 1, opt.Membership.RetransmitMult);
    }

    /// <summary>
    /// Creates the member (binding its transport) with this table's delegates and starts the
    /// table's loops. Then join with JoinAsync.
    /// </summary>
    public static Task<EndpointTable> StartAsync(EndpointTableOptions options, ILoggerFactory? loggerFactory = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(options);
        return StartCoreAsync(options, loggerFactory, cancellationToken);
    }

    private static async Task<EndpointTable> StartCoreAsync(EndpointTableOptions options, ILoggerFactory? loggerFactory, CancellationToken ct)
    {
        var t = new EndpointTable(options, loggerFactory?.CreateLogger("UserOverlay.Membership.Table"));
        var hooks = new Hooks(t, options.Membership.Events, options.Membership.Delegate);
        var mo = options.Membership with { Delegate = hooks, Events = hooks, State = hooks, Broadcasts = hooks };
        t._ml = await Memberlist.CreateAsync(mo, loggerFactory, ct).ConfigureAwait(false);
        t._loops.Add(Task.Run(t.EventLoopAsync));
        t._loops.Add(Task.Run(t.GossipLoopAsync));
        t._loops.Add(Task.Run(t.ReapLoopAsync));
        return t;
    }

    /// <summary>The underlying member (list members, leave, counters).</summary>
    public Memberlist Memberlist => _ml;

    /// <summary>This node's name.</summary>
    public string NodeName => _ml.Name;

    /// <summary>Joins the cluster through seeds (see <see cref="Memberlist.JoinAsync(IEnumerable{string}, CancellationToken)"/>).</summary>
    public Task<int> JoinAsync(IEnumerable<string> seeds, CancellationToken cancellationToken = default) => _ml.JoinAsync(seeds, cancellationToken);

    /// <summary>Joins the cluster through seed endpoints.</summary>
    public Task<int> JoinAsync(IEnumerable<IPEndPoint> seeds, CancellationToken cancellationToken = default) => _ml.JoinAsync(seeds, cancellationToken);

    /// <summary>Networks this node participates in.</summary>
    public IReadOnlyList<string> Networks { get { lock (_lock) return [.. _joined.Order(StringComparer.Ordinal)]; } }

    // ---- local operations -------------------------------------------------------------------------

    /// <summary>
    /// Participates in <paramref name="networkId"/>: others add this host to the network's flood list
    /// and send it the network's endpoint records. Existing remote records of the network are reported
    /// as Added, and the peers as a flood-list change. Idempotent.
    /// </summary>
    public void JoinNetwork(string networkId)
    {
        ArgumentException.ThrowIfNullOrEmpty(networkId);
        lock (_lock) JoinNetworkLocked(networkId);
        _ = SyncNetworkAsync(networkId);
    }

    private void JoinNetworkLocked(string net)
    {
        if (!_joined.Add(net)) return;
        var att = new NetworkAttachment(NodeName, net, ++_clock, Left: false);
        _attachments[(NodeName, net)] = (att, Now);
        _nodeQueue.Queue(TableCodec.EncodeEvent(att), $"att:{NodeName}:{net}");
        foreach (var (_, (rec, _)) in _endpoints.Where(e => e.Key.Net == net))
            if (!rec.Deleted && rec.OwnerNode != NodeName) Emit(new EndpointChange(EndpointChangeKind.Added, rec, null));
        RecomputePeersLocked(net);
    }

    /// <summary>Stops participating: deletes this host's endpoints in the network, reports remote ones as Removed and an empty flood list.</summary>
    public void LeaveNetwork(string networkId)
    {
        lock (_lock)
        {
            if (!_joined.Remove(networkId)) return;
            foreach (var key in _endpoints.Keys.Where(k => k.Net == networkId).ToList())
            {
                var rec = _endpoints[key].Record;
                if (rec.Deleted) continue;
                if (rec.OwnerNode == NodeName) PublishLocked(rec with { Deleted = true, LamportTime = ++_clock });
                else Emit(new EndpointChange(EndpointChangeKind.Removed, rec, null));
            }
            var att = new NetworkAttachment(NodeName, networkId, ++_clock, Left: true);
            _attachments[(NodeName, networkId)] = (att, Now);
            _nodeQueue.Queue(TableCodec.EncodeEvent(att), $"att:{NodeName}:{networkId}");
            _lastPeers.Remove(networkId);
            Emit(networkId, []);
        }
    }

    /// <summary>
    /// Publishes (or updates) a local endpoint: MAC, optional IP, behind this host's VTEP. Joins the
    /// network if needed. Gossiped to the network's members and included in every push/pull.
    /// </summary>
    public EndpointRecord PublishEndpoint(string networkId, ulong mac, IPAddress? ip)
    {
        ArgumentException.ThrowIfNullOrEmpty(networkId);
        if (mac > 0xFFFF_FFFF_FFFF) throw new ArgumentOutOfRangeException(nameof(mac), "a MAC has 48 bits");
        EndpointRecord rec;
        lock (_lock)
        {
            JoinNetworkLocked(networkId);
            rec = new EndpointRecord(networkId, mac, ip, _opt.VtepAddress, NodeName, ++_clock);
            PublishLocked(rec);
        }
        return rec;
    }

    /// <summary>Deletes a local endpoint (a tombstone is gossiped). False if this host does not own it.</summary>
    public bool RemoveEndpoint(string networkId, ulong mac)
    {
        lock (_lock)
        {
            if (!_endpoints.TryGetValue((networkId, mac), out var e) || e.Record.Deleted || e.Record.OwnerNode != NodeName) return false;
            PublishLocked(e.Record with { Deleted = true, LamportTime = ++_clock });
            return true;
        }
    }

    private void PublishLocked(EndpointRecord rec)
    {
        _endpoints[(rec.NetworkId, rec.Mac)] = (rec, Now);
        NetworkQueue(rec.NetworkId).Queue(TableCodec.EncodeEvent(rec), $"ep:{rec.NetworkId}:{rec.Mac}");
    }

    // ---- queries ----------------------------------------------------------------------------------

    /// <summary>Live endpoint records of a network (local and remote), sorted by MAC.</summary>
    public IReadOnlyList<EndpointRecord> GetEndpoints(string networkId)
    {
        lock (_lock)
            return _endpoints.Values.Select(e => e.Record).Where(r => r.NetworkId == networkId && !r.Deleted).OrderBy(r => r.Mac).ToList();
    }

    /// <summary>A live record by network and MAC, or null.</summary>
    public EndpointRecord? Lookup(string networkId, ulong mac)
    {
        lock (_lock)
            return _endpoints.TryGetValue((networkId, mac), out var e) && !e.Record.Deleted ? e.Record : null;
    }

    /// <summary>The flood list: other live hosts attached to the network, with their VTEP and data port.</summary>
    public IReadOnlyList<NetworkPeer> GetNetworkPeers(string networkId)
    {
        lock (_lock) return ComputePeersLocked(networkId);
    }

    /// <summary>Parsed overlay meta of every live member (including this one) that publishes it.</summary>
    public IReadOnlyList<(MemberInfo Member, OverlayNodeMeta Meta)> GetOverlayMembers() =>
        _ml.Members.Select(m => OverlayNodeMeta.TryParse(m.Meta.Span, out var meta) ? (m, meta!) : default)
            .Where(x => x.m is not null).ToList();

    // ---- remote events ----------------------------------------------------------------------------

    private bool IsLive(string node)
    {
        if (node == NodeName) return true;
        var s = _ml.GetMember(node)?.State;
        return s is MemberState.Alive or MemberState.Suspect;
    }

    private void ApplyAttachment(NetworkAttachment a, bool fromGossip)
    {
        if (a.LamportTime > _clock) _clock = a.LamportTime;
        if (a.Node == NodeName)
        {
            // Our own past, echoed back (e.g. after a restart): restate the truth with a newer time.
            bool joined = _joined.Contains(a.NetworkId);
            if (_attachments.TryGetValue((NodeName, a.NetworkId), out var mine) ? (a.LamportTime >= mine.Att.LamportTime && a.Left == joined) : !a.Left)
            {
                var fix = new NetworkAttachment(NodeName, a.NetworkId, ++_clock, Left: !joined);
                _attachments[(NodeName, a.NetworkId)] = (fix, Now);
                _nodeQueue.Queue(TableCodec.EncodeEvent(fix), $"att:{NodeName}:{a.NetworkId}");
            }
            return;
        }
        if (!IsLive(a.Node)) { DeferIfUnknown(a.Node, a); return; }
        bool known = _attachments.TryGetValue((a.Node, a.NetworkId), out var cur);
        if (known && a.LamportTime <= cur.Att.LamportTime) return;
        _attachments[(a.Node, a.NetworkId)] = (a, Now);
        // New attachments are passed on however we learned them (push/pull too): they are few (one per host
        // and network), and a host that learns of a new member of its network offers that member its records.
        _nodeQueue.Queue(TableCodec.EncodeEvent(a), $"att:{a.Node}:{a.NetworkId}");
        if (_joined.Contains(a.NetworkId))
        {
            RecomputePeersLocked(a.NetworkId);
            // A host newly in one of our networks may have missed our records (gossiped before we knew it
            // was a member there, e.g. in a join storm): offer ours again, so it learns them from their
            // owner now instead of at the next push/pull. The queue keeps one entry per record.
            if (!a.Left && (!known || cur.Att.Left))
            {
                RequeueOwnRecordsLocked(a.NetworkId);
                // Gossip is probabilistic: also exchange the whole table with the newcomer once, so the pair is
                // complete now rather than at the next periodic push/pull. One side of each pair initiates
                // (the lower name), and each pair at most once until one of them leaves.
                if (string.CompareOrdinal(NodeName, a.Node) < 0 && _synced.Add(a.Node)) _ = SyncWithAsync(a.Node);
            }
        }
    }

    private void RequeueOwnRecordsLocked(string net)
    {
        foreach (var ((n, mac), (rec, _)) in _endpoints)
            if (n == net && rec.OwnerNode == NodeName)
                NetworkQueue(net).Queue(TableCodec.EncodeEvent(rec), $"ep:{net}:{mac}");
    }

    private void ApplyEndpoint(EndpointRecord r, bool fromGossip)
    {
        if (r.LamportTime > _clock) _clock = r.LamportTime;
        var key = (r.NetworkId, r.Mac);
        _endpoints.TryGetValue(key, out var cur);
        var existing = cur.Record;
        if (r.OwnerNode == NodeName)
        {
            // A version of our own record we do not have (stale, from before a restart): overrule it.
            if (existing is null || r.IsNewerThan(existing))
            {
                var fix = existing is { OwnerNode: var o } && o == NodeName
                    ? existing with { LamportTime = ++_clock }
                    : r with { Deleted = true, LamportTime = ++_clock };
                PublishLocked(fix);
            }
            return;
        }
        if (!IsLive(r.OwnerNode)) { DeferIfUnknown(r.OwnerNode, r); return; }
        if (existing is not null && !r.IsNewerThan(existing)) return;
        _endpoints[key] = (r, Now);
        if (fromGossip && _joined.Contains(r.NetworkId))
            NetworkQueue(r.NetworkId).Queue(TableCodec.EncodeEvent(r), $"ep:{r.NetworkId}:{r.Mac}");
        if (!_joined.Contains(r.NetworkId)) return;

        bool wasLive = existing is { Deleted: false } && existing.OwnerNode != NodeName;
        if (existing is { Deleted: false, OwnerNode: var prevOwner } && prevOwner == NodeName)
            wasLive = false; // someone took over a MAC we had: for us it is a new remote endpoint
        if (!r.Deleted && !wasLive) Emit(new EndpointChange(EndpointChangeKind.Added, r, null));
        else if (!r.Deleted && wasLive && (r.Vtep.Equals(existing!.Vtep) is false || !Equals(r.Ip, existing.Ip) || r.OwnerNode != existing.OwnerNode))
            Emit(new EndpointChange(EndpointChangeKind.Updated, r, existing));
        else if (r.Deleted && wasLive) Emit(new EndpointChange(EndpointChangeKind.Removed, existing!, null));
    }

    private void OnUserMessage(ReadOnlySpan<byte> msg)
    {
        if (msg.Length < 2 || msg[0] != TableCodec.Magic) return;
        List<object> events;
        try { events = TableCodec.DecodeBatch(msg[1..]); }
        catch (MsgPackException) { Interlocked.Increment(ref _malformed); return; }
        lock (_lock)
        {
            foreach (var e in events)
            {
                if (e is NetworkAttachment a) ApplyAttachment(a, fromGossip: true);
                else if (e is EndpointRecord r) ApplyEndpoint(r, fromGossip: true);
            }
        }
    }

    private long _malformed;

    /// <summary>Table messages that could not be decoded (dropped).</summary>
    public long MalformedMessages => Interlocked.Read(ref _malformed);

    private byte[] GetLocalState()
    {
        lock (_lock)
        {
            var atts = _attachments.Values.Select(a => a.Att).ToList();
            var eps = _endpoints.Values.Select(e => e.Record).ToList();
            return TableCodec.EncodeState(atts, eps);
        }
    }

    private void MergeRemoteState(ReadOnlySpan<byte> state)
    {
        if (state.Length < 1 || state[0] != TableCodec.Magic) return;
        List<NetworkAttachment> atts;
        List<EndpointRecord> eps;
        try { (atts, eps) = TableCodec.DecodeState(state[1..]); }
        catch (MsgPackException) { Interlocked.Increment(ref _malformed); return; }
        lock (_lock)
        {
            foreach (var a in atts) ApplyAttachment(a, fromGossip: false);
            foreach (var e in eps) ApplyEndpoint(e, fromGossip: false);
        }
    }

    private void OnMemberLeft(MemberInfo m)
    {
        if (m.Name == NodeName) return;
        lock (_lock)
        {
            _purged.Add(m.Name);
            _synced.Remove(m.Name);
            foreach (var key in _endpoints.Where(e => e.Value.Record.OwnerNode == m.Name).Select(e => e.Key).ToList())
            {
                var rec = _endpoints[key].Record;
                _endpoints.Remove(key);
                if (!rec.Deleted && _joined.Contains(rec.NetworkId)) Emit(new EndpointChange(EndpointChangeKind.Removed, rec, null));
            }
            foreach (var key in _attachments.Keys.Where(k => k.Node == m.Name).ToList()) _attachments.Remove(key);
            foreach (var net in _joined) RecomputePeersLocked(net);
        }
    }

    private void OnMemberJoinedOrUpdated(MemberInfo m)
    {
        if (m.Name == NodeName) return;
        bool resync;
        lock (_lock)
        {
            resync = _purged.Remove(m.Name);
            if (_pending.Remove(m.Name, out var held) && IsLive(m.Name))
            {
                foreach (var e in held.Items)
                {
                    if (e is NetworkAttachment a) ApplyAttachment(a, fromGossip: true);
                    else if (e is EndpointRecord r) ApplyEndpoint(r, fromGossip: true);
                }
            }
            foreach (var net in _joined) RecomputePeersLocked(net);
        }
        if (resync)
        {
            // It came back: we dropped its state while it was gone, so fetch it (and give it ours).
            _ = Task.Run(async () =>
            {
                try { await _ml.PushPullAsync(m.EndPoint, _stop.Token).ConfigureAwait(false); }
                catch (Exception) { /* anti-entropy will retry */ }
            });
        }
    }

    /// <summary>Most table events held back per unknown owner (the oldest beyond it are dropped; push/pull repairs).</summary>
    internal const int PendingLimit = 4096;

    /// <summary>Holds an event of an owner we have never heard of (not one we know failed or left: that is refused) until it joins.</summary>
    private void DeferIfUnknown(string node, object item)
    {
        if (_ml.GetMember(node) is not null) return;
        if (!_pending.TryGetValue(node, out var p)) _pending[node] = p = ([], Now);
        if (p.Items.Count >= PendingLimit) p.Items.RemoveAt(0);
        p.Items.Add(item);
    }

    private async Task SyncWithAsync(string node)
    {
        try
        {
            await _syncSlots.WaitAsync(_stop.Token).ConfigureAwait(false);
            try
            {
                if (_ml.GetMember(node) is { } member)
                    await _ml.PushPullAsync(member.EndPoint, _stop.Token).ConfigureAwait(false);
            }
            finally { _syncSlots.Release(); }
        }
        catch (Exception) { /* periodic push/pull repairs */ }
    }

    /// <summary>A push/pull with one peer of the network, so a host that just joined it learns its records at once.</summary>
    private async Task SyncNetworkAsync(string net)
    {
        var peers = GetNetworkPeers(net);
        if (peers.Count == 0) return;
        var p = peers[Random.Shared.Next(peers.Count)];
        var member = _ml.GetMember(p.NodeName);
        if (member is null) return;
        try { await _ml.PushPullAsync(member.EndPoint, _stop.Token).ConfigureAwait(false); }
        catch (Exception) { /* periodic push/pull repairs */ }
    }

    // ---- flood lists and events -------------------------------------------------------------------

    private List<NetworkPeer> ComputePeersLocked(string net)
    {
        var peers = new List<NetworkPeer>();
        foreach (var ((node, n), (att, _)) in _attachments)
        {
            if (n != net || att.Left || node == NodeName) continue;
            var m = _ml.GetMember(node);
            if (m is null || m.State is not (MemberState.Alive or MemberState.Suspect)) continue;
            if (!OverlayNodeMeta.TryParse(m.Meta.Span, out var meta)) continue;
            peers.Add(new NetworkPeer(node, m.Address, meta!.VtepAddress, meta.DataPort));
        }
        peers.Sort((a, b) => string.CompareOrdinal(a.NodeName, b.NodeName));
        return peers;
    }

    private void RecomputePeersLocked(string net)
    {
        var peers = ComputePeersLocked(net);
        _networkSizes[net] = peers.Count + 1;
        if (_lastPeers.TryGetValue(net, out var last) && last.SequenceEqual(peers)) return;
        _lastPeers[net] = peers;
        Emit(net, peers);
    }

    private void Emit(EndpointChange c)
    {
        if (_opt.Observer is { } o) _events.Writer.TryWrite(() => o.OnEndpointChanged(c));
    }

    private void Emit(string net, IReadOnlyList<NetworkPeer> peers)
    {
        if (_opt.Observer is { } o) _events.Writer.TryWrite(() => o.OnNetworkPeersChanged(net, peers));
    }

    private async Task EventLoopAsync()
    {
        await foreach (var a in _events.Reader.ReadAllAsync().ConfigureAwait(false))
        {
            try { a(); }
            catch (Exception e) { _log?.LogError(e, "endpoint table observer threw"); }
        }
    }

    // ---- loops ------------------------------------------------------------------------------------

    private TransmitLimitedQueue NetworkQueue(string net)
    {
        if (!_networkQueues.TryGetValue(net, out var q))
        {
            q = new TransmitLimitedQueue(() => NetworkSize(net), _opt.Membership.RetransmitMult);
            _networkQueues[net] = q;
        }
        return q;
    }

    // Members per network (peers + us), for the per-network retransmit limit. Kept outside the table
    // lock because queues call it under their own lock (lock order is table → queue, never back).
    private readonly System.Collections.Concurrent.ConcurrentDictionary<string, int> _networkSizes = new(StringComparer.Ordinal);

    private int NetworkSize(string net) => _networkSizes.TryGetValue(net, out int n) ? n : 1;

    /// <summary>Per network: send pending endpoint events to GossipNodes random members of that network.</summary>
    private async Task GossipLoopAsync()
    {
        var ct = _stop.Token;
        var interval = _opt.Membership.GossipInterval > TimeSpan.Zero ? _opt.Membership.GossipInterval : TimeSpan.FromMilliseconds(200);
        int limit = _opt.Membership.UdpBufferSize - 64 - (_opt.Membership.Keyring is null ? 0 : Security.PayloadCrypto.Overhead) - TableCodec.BatchOverhead;
        try
        {
            using var timer = new PeriodicTimer(interval);
            while (await timer.WaitForNextTickAsync(ct).ConfigureAwait(false))
            {
                List<(TransmitLimitedQueue Q, List<IPEndPoint> Targets)> work = [];
                lock (_lock)
                {
                    foreach (var (net, q) in _networkQueues)
                    {
                        if (q.Count == 0) continue;
                        var targets = ComputePeersLocked(net).Select(p => _ml.GetMember(p.NodeName)?.EndPoint).OfType<IPEndPoint>().ToList();
                        Shuffle(targets);
                        if (targets.Count > _opt.Membership.GossipNodes) targets.RemoveRange(_opt.Membership.GossipNodes, targets.Count - _opt.Membership.GossipNodes);
                        if (targets.Count > 0) work.Add((q, targets));
                    }
                }
                foreach (var (q, targets) in work)
                {
                    foreach (var to in targets)
                    {
                        var msgs = q.GetBroadcasts(0, limit);
                        if (msgs.Count == 0) break;
                        await _ml.SendBestEffortAsync(to, TableCodec.EncodeBatch(msgs), ct).ConfigureAwait(false);
                    }
                }
            }
        }
        catch (OperationCanceledException) { }
    }

    private static void Shuffle<T>(List<T> l)
    {
        for (int i = l.Count - 1; i > 0; i--)
        {
            int j = Random.Shared.Next(i + 1);
            (l[i], l[j]) = (l[j], l[i]);
        }
    }

    private async Task ReapLoopAsync()
    {
        var ct = _stop.Token;
        try
        {
            using var timer = new PeriodicTimer(_opt.ReapInterval);
            while (await timer.WaitForNextTickAsync(ct).ConfigureAwait(false))
                Reap();
        }
        catch (OperationCanceledException) { }
    }

    /// <summary>Drops tombstones (deleted records, network leaves) older than TombstoneTtl.</summary>
    internal int Reap()
    {
        long cutoff = Now - (long)_opt.TombstoneTtl.TotalMilliseconds;
        int n = 0;
        lock (_lock)
        {
            foreach (var key in _endpoints.Where(e => e.Value.Record.Deleted && e.Value.StoredAt < cutoff).Select(e => e.Key).ToList()) { _endpoints.Remove(key); n++; }
            foreach (var key in _attachments.Where(a => a.Value.Att.Left && a.Value.StoredAt < cutoff).Select(a => a.Key).ToList()) { _attachments.Remove(key); n++; }
            long pendingCutoff = Now - (long)_opt.PendingTtl.TotalMilliseconds;
            foreach (var node in _pending.Where(p => p.Value.Since < pendingCutoff).Select(p => p.Key).ToList()) _pending.Remove(node);
        }
        return n;
    }

    /// <summary>Number of tombstones held (deleted records and network leaves).</summary>
    public int TombstoneCount
    {
        get { lock (_lock) return _endpoints.Values.Count(e => e.Record.Deleted) + _attachments.Values.Count(a => a.Att.Left); }
    }

    private static long Now => Environment.TickCount64;

    /// <summary>Leaves the cluster gracefully (others drop this host's records and flood-list entries at once).</summary>
    public Task LeaveAsync(TimeSpan timeout, CancellationToken cancellationToken = default) => _ml.LeaveAsync(timeout, cancellationToken);

    /// <summary>Stops the table and the member (without leaving; call <see cref="LeaveAsync"/> first for a graceful exit).</summary>
    public async ValueTask DisposeAsync()
    {
        if (_stop.IsCancellationRequested) return;
        _stop.Cancel();
        await _ml.DisposeAsync().ConfigureAwait(false);
        _events.Writer.TryComplete();
        try { await Task.WhenAll(_loops).WaitAsync(TimeSpan.FromSeconds(5)).ConfigureAwait(false); } catch (Exception) { }
    }

    /// <summary>The table's view of memberlist's delegates; forwards events and foreign user messages to the embedder's.</summary>
    private sealed class Hooks(EndpointTable t, IMembershipEvents? events, IMembershipDelegate? inner) : IMembershipDelegate, IMembershipEvents, IStateDelegate, IBroadcastSource
    {
        public int WriteNodeMeta(Span<byte> destination)
        {
            t._meta.CopyTo(destination);
            return t._meta.Length;
        }

        public void OnUserMessage(ReadOnlySpan<byte> message)
        {
            if (message.Length > 0 && message[0] == TableCodec.Magic) t.OnUserMessage(message);
            else inner?.OnUserMessage(message);
        }

        public void OnJoin(MemberInfo member) { t.OnMemberJoinedOrUpdated(member); events?.OnJoin(member); }
        public void OnLeave(MemberInfo member) { t.OnMemberLeft(member); events?.OnLeave(member); }
        public void OnUpdate(MemberInfo member) { t.OnMemberJoinedOrUpdated(member); events?.OnUpdate(member); }

        public byte[] GetLocalState(bool join) => t.GetLocalState();
        public void MergeRemoteState(ReadOnlySpan<byte> state, bool join) => t.MergeRemoteState(state);

        public IReadOnlyList<byte[]> GetBroadcasts(int overhead, int limit)
        {
            // Node-level table events (network attachments) ride on memberlist's gossip, one batch per call.
            var msgs = t._nodeQueue.GetBroadcasts(0, limit - overhead - TableCodec.BatchOverhead);
            return msgs.Count == 0 ? [] : [TableCodec.EncodeBatch(msgs)];
        }
    }
}
