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
//
// Files: EndpointTable.cs (state, lifecycle, public entry points), EndpointTable.Store.cs (local
// operations, queries, merge rules), .Members.cs (members failing, leaving, returning), .Gossip.cs
// (per-network gossip), .Sync.cs (push/pull), .Events.cs (flood lists, observer), .Reaper.cs
// (tombstones), .Hooks.cs (memberlist's delegates).

using System.Net;
using Microsoft.Extensions.Logging;

namespace UserOverlay.Membership.Table;

/// <summary>
/// The replicated endpoint table (NetworkDB's role in Docker's overlay): publish local endpoints,
/// observe remote ones and the per-network flood list. All public members are thread-safe.
/// </summary>
public sealed partial class EndpointTable : IAsyncDisposable
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
    private readonly Dictionary<string, (List<TableEvent> Items, long Since)> _pending = new(StringComparer.Ordinal);
    private readonly Dictionary<string, TransmitLimitedQueue> _networkQueues = new(StringComparer.Ordinal);
    private readonly TransmitLimitedQueue _nodeQueue;
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

    private long _malformed;

    /// <summary>Table messages that could not be decoded (dropped).</summary>
    public long MalformedMessages => Interlocked.Read(ref _malformed);

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
}
