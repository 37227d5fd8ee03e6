using System.Collections.Concurrent;
using UserOverlay.Cluster.Replication;

namespace UserOverlay.Cluster.Store;

/// <summary>Settings of a <see cref="KvStateMachine"/>; every member of one log must use the same values for the fields marked so.</summary>
public sealed record KvStateMachineOptions
{
    /// <summary>How many request ids (and their results) the de-duplication table keeps, evicted oldest first (the same on every member).</summary>
    public int DedupEntries { get; init; } = 4096;

    /// <summary>The most bytes of results that table keeps, evicted oldest first (the same on every member).</summary>
    public long DedupBytes { get; init; } = 64L << 20;

    /// <summary>How many revisions of changes are kept for watches (a local choice).</summary>
    public int HistoryRevisions { get; init; } = 10_000;

    /// <summary>The most bytes of changes kept for watches (a local choice); at least one revision is always kept.</summary>
    public long HistoryBytes { get; init; } = 64L << 20;
}

/// <summary>What happened to a lease, for the member that counts leases' time (the leader).</summary>
internal enum LeaseChangeKind
{
    /// <summary>A lease was granted.</summary>
    Granted,
    /// <summary>A lease was renewed.</summary>
    Renewed,
    /// <summary>A lease was revoked (or expired).</summary>
    Revoked,
    /// <summary>A snapshot replaced every lease: start over from <see cref="KvStateMachine.Leases"/>.</summary>
    Reset,
}

/// <summary>One lease change.</summary>
internal readonly record struct LeaseChange(LeaseChangeKind Kind, long Id, long TtlSeconds);

/// <summary>What <see cref="KvStateMachine.ReadHistory"/> found.</summary>
/// <param name="Events">The matching changes, in order.</param>
/// <param name="Next">The revision to read from next.</param>
/// <param name="Changed">When caught up: completes at the next applied change (else null: read again at once).</param>
internal readonly record struct HistoryRead(List<WatchEvent> Events, long Next, Task? Changed);

/// <summary>
/// The embedded store's state machine: the key space (ordinal order), the revision counter, leases, a bounded
/// history of changes for watches and a bounded table of request ids already applied. It applies
/// <see cref="KvCommand"/>s in log order with etcd v3's semantics (as <see cref="IClusterStore"/> states them):
/// deterministic (no clock, no randomness, no I/O — a lease's id is the log index that granted it; its time is
/// counted by the leader's store, which proposes the revoke), and a malformed or refused command is an error result,
/// never an exception. Each result is handed to the local proposer that awaits its request id (<see cref="Expect"/>);
/// a request id seen before gets the first result again and changes nothing.
/// <para>
/// Thread-safety: <see cref="Apply"/> and <see cref="ReadSnapshot"/> come from the log's one applying thread; reads,
/// <see cref="WriteSnapshot"/> and waits may come from any thread (one lock guards the state; reads are short).
/// The snapshot holds keys, revision, compact revision, leases with their TTLs and the de-duplication table, not the
/// watch history: after a snapshot is installed, watches start at its revision + 1.
/// </para>
/// </summary>
public sealed class KvStateMachine : IReplicatedStateMachine
{
    private static ReadOnlySpan<byte> SnapshotMagic => "UOKV"u8;
    private const byte SnapshotVersion = 1;

    private readonly KvStateMachineOptions _options;
    private readonly Lock _lock = new();
    private SortedSet<string> _keys = new(StringComparer.Ordinal);
    private Dictionary<string, KeyValue> _kvs = new(StringComparer.Ordinal);
    private Dictionary<long, LeaseEntry> _leases = [];
    private Dictionary<Guid, (KvResult Result, long Bytes)> _dedup = [];
    private Queue<Guid> _dedupOrder = new();
    private long _dedupBytes;
    private readonly List<(long Revision, WatchEvent[] Events, long Bytes)> _history = [];
    private long _historyBytes;
    private long _revision = 1;
    private long _compactRevision = 1;
    private long _appliedIndex;
    private TaskCompletionSource _changed = NewSignal();
    private readonly ConcurrentDictionary<Guid, TaskCompletionSource<KvResult>> _waiters = new();
    private long _malformed, _duplicates;

    /// <summary>A machine with an empty key space at revision 1.</summary>
    public KvStateMachine(KvStateMachineOptions? options = null)
    {
        _options = options ?? new KvStateMachineOptions();
        if (_options.DedupEntries < 1) throw new ArgumentOutOfRangeException(nameof(options), _options.DedupEntries, "DedupEntries: at least 1");
        if (_options.HistoryRevisions < 1) throw new ArgumentOutOfRangeException(nameof(options), _options.HistoryRevisions, "HistoryRevisions: at least 1");
    }

    private sealed class LeaseEntry(long ttlSeconds)
    {
        public long TtlSeconds { get; } = ttlSeconds;
        public SortedSet<string> Keys { get; } = new(StringComparer.Ordinal);
    }

    /// <summary>Raised on the applying thread, after the state changed, for each lease change (in log order).</summary>
    internal event Action<LeaseChange>? LeaseChanged;

    /// <summary>The revision of the applied state.</summary>
    public long Revision { get { lock (_lock) return _revision; } }

    /// <summary>The oldest revision a watch may start from.</summary>
    public long CompactRevision { get { lock (_lock) return _compactRevision; } }

    /// <summary>The index of the last applied log entry.</summary>
    public long AppliedIndex { get { lock (_lock) return _appliedIndex; } }

    /// <summary>Commands that did not decode (each was answered with <see cref="StoreErrorCode.InvalidArgument"/>).</summary>
    public long MalformedCommands => Interlocked.Read(ref _malformed);

    /// <summary>Commands whose request id had been applied already (answered with the first result, not applied again).</summary>
    public long DuplicateRequests => Interlocked.Read(ref _duplicates);

    /// <summary>The leases and their TTLs, by id.</summary>
    public IReadOnlyList<(long Id, long TtlSeconds)> Leases()
    {
        lock (_lock) return [.. _leases.OrderBy(l => l.Key).Select(l => (l.Key, l.Value.TtlSeconds))];
    }

    /// <summary>One key, or none.</summary>
    public RangeResult Get(string key)
    {
        lock (_lock) return new RangeResult(_kvs.TryGetValue(key, out var kv) ? [kv] : [], _revision);
    }

    /// <summary>Every key under <paramref name="prefix"/>, at most <paramref name="limit"/> when it is positive.</summary>
    public RangeResult Range(string prefix, int limit = 0)
    {
        lock (_lock)
        {
            var kvs = Under(prefix, limit > 0 ? limit + 1 : 0);
            if (limit > 0 && kvs.Count > limit)
            {
                kvs.RemoveAt(kvs.Count - 1);
                return new RangeResult(kvs, _revision, More: true);
            }
            return new RangeResult(kvs, _revision);
        }
    }

    /// <summary>
    /// Registers the local proposer's wait for <paramref name="requestId"/>: the task completes (asynchronously) with
    /// the result when the command is applied, or at once if it was applied already and is still remembered.
    /// </summary>
    internal Task<KvResult> Expect(Guid requestId)
    {
        var tcs = new TaskCompletionSource<KvResult>(TaskCreationOptions.RunContinuationsAsynchronously);
        if (!_waiters.TryAdd(requestId, tcs)) throw new InvalidOperationException($"request {requestId} is awaited already");
        lock (_lock)
        {
            if (_dedup.TryGetValue(requestId, out var done) && _waiters.TryRemove(requestId, out _))
                tcs.TrySetResult(done.Result);
        }
        return tcs.Task;
    }

    /// <summary>Stops waiting for <paramref name="requestId"/> (its proposal failed or was abandoned).</summary>
    internal void Forget(Guid requestId) => _waiters.TryRemove(requestId, out _);

    /// <inheritdoc/>
    public void Apply(long index, ReadOnlySpan<byte> command)
    {
        KvResult result;
        Guid id;
        List<LeaseChange>? leaseChanges = null;
        TaskCompletionSource? signal = null;
        lock (_lock)
        {
            if (index <= _appliedIndex) return; // already part of the state (a snapshot covered it)
            _appliedIndex = index;
            long before = _revision;
            if (!KvCommandCodec.TryDecode(command, out var cmd, out id, out string error))
            {
                Interlocked.Increment(ref _malformed);
                result = KvResult.Failed(StoreErrorCode.InvalidArgument, $"malformed command at index {index}: {error}");
            }
            else if (_dedup.TryGetValue(id, out var first))
            {
                Interlocked.Increment(ref _duplicates);
                result = first.Result;
            }
            else
            {
                try { result = Execute(index, cmd!, ref leaseChanges); }
                catch (Exception e) when (e is not OutOfMemoryException)
                {
                    // A defect, not an input: Execute validates before it changes anything. Answer rather than stop the log.
                    result = KvResult.Failed(StoreErrorCode.InvalidArgument, $"command at index {index} failed: {e.Message}");
                }
                Remember(id, result);
            }
            if (_revision != before || leaseChanges is not null)
            {
                signal = _changed;
                _changed = NewSignal();
            }
        }
        if (id != Guid.Empty && _waiters.TryRemove(id, out var waiter)) waiter.TrySetResult(result);
        signal?.TrySetResult();
        if (leaseChanges is not null)
            foreach (var change in leaseChanges) LeaseChanged?.Invoke(change);
    }

    private KvResult Execute(long index, KvCommand command, ref List<LeaseChange>? leaseChanges)
    {
        switch (command)
        {
            case TxnCommand t:
                return Txn(t.Request);
            case LeaseGrantCommand g:
                if (g.TtlSeconds < 1 || g.TtlSeconds > KvValidation.MaxLeaseTtlSeconds)
                    return KvResult.Failed(StoreErrorCode.InvalidArgument, $"ttl: {g.TtlSeconds} s is outside 1..{KvValidation.MaxLeaseTtlSeconds} s");
                if (index <= 0 || _leases.ContainsKey(index))
                    return KvResult.Failed(StoreErrorCode.InvalidArgument, $"log index {index} cannot be a lease id");
                _leases[index] = new LeaseEntry(g.TtlSeconds);
                (leaseChanges ??= []).Add(new LeaseChange(LeaseChangeKind.Granted, index, g.TtlSeconds));
                return new KvResult(Lease: new Lease(index, TimeSpan.FromSeconds(g.TtlSeconds)));
            case LeaseKeepAliveCommand k:
                if (!_leases.TryGetValue(k.LeaseId, out var kept))
                    return KvResult.Failed(StoreErrorCode.LeaseNotFound, $"lease {k.LeaseId} not found (expired, revoked or never granted)");
                (leaseChanges ??= []).Add(new LeaseChange(LeaseChangeKind.Renewed, k.LeaseId, kept.TtlSeconds));
                return new KvResult(TtlSeconds: kept.TtlSeconds);
            case LeaseRevokeCommand r:
                if (_leases.Remove(r.LeaseId, out var revoked))
                {
                    long next = _revision + 1;
                    var events = new List<WatchEvent>(revoked.Keys.Count);
                    foreach (string key in revoked.Keys)
                        if (_kvs.Remove(key, out var prev))
                        {
                            _keys.Remove(key);
                            events.Add(Deleted(prev, next));
                        }
                    Commit(next, events);
                    (leaseChanges ??= []).Add(new LeaseChange(LeaseChangeKind.Revoked, r.LeaseId, revoked.TtlSeconds));
                }
                return new KvResult(Txn: new TxnResult(true, _revision, []));
            default:
                return KvResult.Failed(StoreErrorCode.InvalidArgument, "unknown command");
        }
    }

    private KvResult Txn(TxnRequest request)
    {
        if (KvValidation.Check(request) is { } refused) return KvResult.Failed(refused.Code, refused.Message);
        bool ok = true;
        foreach (var c in request.Compares)
            ok &= Holds(c);
        var ops = ok ? request.Success : request.Failure ?? [];
        foreach (var op in ops)
            if (op.Kind == OpKind.Put && op.Lease != 0 && !_leases.ContainsKey(op.Lease))
                return KvResult.Failed(StoreErrorCode.LeaseNotFound, $"lease {op.Lease} not found (expired, revoked or never granted) for key '{op.Key}'");
        // Nothing below can fail: the state changes only from here on.
        long next = _revision + 1;
        var events = new List<WatchEvent>();
        var responses = new OpResponse[ops.Count];
        for (int i = 0; i < ops.Count; i++)
        {
            var op = ops[i];
            switch (op.Kind)
            {
                case OpKind.Range:
                    responses[i] = new OpResponse(op.Prefix ? Under(op.Key, 0) : _kvs.TryGetValue(op.Key, out var r) ? [r] : []);
                    break;
                case OpKind.Put:
                    _kvs.TryGetValue(op.Key, out var prev);
                    var kv = new KeyValue(op.Key, op.Value!, prev?.CreateRevision ?? next, next, (prev?.Version ?? 0) + 1, op.Lease);
                    _kvs[op.Key] = kv;
                    if (prev is null) _keys.Add(op.Key);
                    if (prev is { Lease: not 0 } && prev.Lease != op.Lease && _leases.TryGetValue(prev.Lease, out var old)) old.Keys.Remove(op.Key);
                    if (op.Lease != 0) _leases[op.Lease].Keys.Add(op.Key);
                    events.Add(new WatchEvent(WatchEventType.Put, kv, prev));
                    responses[i] = new OpResponse([], Previous: prev);
                    break;
                case OpKind.Delete:
                    var gone = op.Prefix ? Under(op.Key, 0) : _kvs.TryGetValue(op.Key, out var d) ? [d] : [];
                    foreach (var g in gone)
                    {
                        _kvs.Remove(g.Key);
                        _keys.Remove(g.Key);
                        if (g.Lease != 0 && _leases.TryGetValue(g.Lease, out var held)) held.Keys.Remove(g.Key);
                        events.Add(Deleted(g, next));
                    }
                    responses[i] = new OpResponse([], Deleted: gone.Count);
                    break;
            }
        }
        Commit(next, events);
        return new KvResult(Txn: new TxnResult(ok, _revision, responses));
    }

    private static WatchEvent Deleted(KeyValue prev, long revision) =>
        new(WatchEventType.Delete, new KeyValue(prev.Key, [], 0, revision, 0, 0), prev);

    /// <summary>Advances the revision when <paramref name="events"/> changed anything, and records them for watches.</summary>
    private void Commit(long next, List<WatchEvent> events)
    {
        if (events.Count == 0) return;
        _revision = next;
        long bytes = 0;
        foreach (var e in events) bytes += Size(e.Kv) + (e.PrevKv is null ? 0 : Size(e.PrevKv));
        _history.Add((next, [.. events], bytes));
        _historyBytes += bytes;
        int drop = 0;
        long dropped = 0;
        while (_history.Count - drop > 1 && (_history.Count - drop > _options.HistoryRevisions || _historyBytes - dropped > _options.HistoryBytes))
            dropped += _history[drop++].Bytes;
        if (drop == 0) return;
        _compactRevision = _history[drop - 1].Revision + 1;
        _history.RemoveRange(0, drop);
        _historyBytes -= dropped;
    }

    private static long Size(KeyValue kv) => kv.Key.Length * 2 + kv.Value.Length + 64;

    private void Remember(Guid id, KvResult result)
    {
        long bytes = 64;
        if (result.Txn is { } t)
            foreach (var r in t.Responses)
            {
                foreach (var kv in r.Kvs) bytes += Size(kv);
                if (r.Previous is not null) bytes += Size(r.Previous);
            }
        bytes += (result.Message?.Length ?? 0) * 2;
        _dedup[id] = (result, bytes);
        _dedupOrder.Enqueue(id);
        _dedupBytes += bytes;
        while (_dedupOrder.Count > 1 && (_dedupOrder.Count > _options.DedupEntries || _dedupBytes > _options.DedupBytes))
            if (_dedup.Remove(_dedupOrder.Dequeue(), out var evicted)) _dedupBytes -= evicted.Bytes;
    }

    private bool Holds(Compare c)
    {
        _kvs.TryGetValue(c.Key, out var kv);
        int cmp;
        if (c.Target == CompareTarget.Value)
        {
            if (kv is null) return c.Result == CompareResult.NotEqual;
            cmp = kv.Value.AsSpan().SequenceCompareTo(c.Value ?? []);
        }
        else
        {
            long actual = c.Target switch
            {
                CompareTarget.Version => kv?.Version ?? 0,
                CompareTarget.CreateRevision => kv?.CreateRevision ?? 0,
                CompareTarget.ModRevision => kv?.ModRevision ?? 0,
                _ => kv?.Lease ?? 0,
            };
            cmp = actual.CompareTo(c.Number);
        }
        return c.Result switch
        {
            CompareResult.Equal => cmp == 0,
            CompareResult.NotEqual => cmp != 0,
            CompareResult.Less => cmp < 0,
            _ => cmp > 0,
        };
    }

    /// <summary>The keys under <paramref name="prefix"/> in ordinal order (at most <paramref name="max"/> when positive); under the lock.</summary>
    private List<KeyValue> Under(string prefix, int max)
    {
        var result = new List<KeyValue>();
        if (_keys.Count == 0) return result;
        IEnumerable<string> view = _keys;
        if (prefix.Length > 0)
        {
            string last = _keys.Max!;
            if (string.CompareOrdinal(prefix, last) > 0) return result;
            string? upper = Successor(prefix);
            view = _keys.GetViewBetween(prefix, upper is not null && string.CompareOrdinal(upper, last) < 0 ? upper : last);
        }
        foreach (string key in view)
        {
            if (!key.StartsWith(prefix, StringComparison.Ordinal)) break;
            result.Add(_kvs[key]);
            if (max > 0 && result.Count == max) break;
        }
        return result;
    }

    /// <summary>The least string greater than every string starting with <paramref name="prefix"/>, or null when there is none.</summary>
    private static string? Successor(string prefix)
    {
        int end = prefix.Length;
        while (end > 0 && prefix[end - 1] == char.MaxValue) end--;
        if (end == 0) return null;
        return string.Concat(prefix.AsSpan(0, end - 1), [(char)(prefix[end - 1] + 1)]);
    }

    /// <summary>
    /// The changes under <paramref name="prefix"/> from revision <paramref name="from"/> on (whole revisions, until
    /// at least <paramref name="maxEvents"/>); <see cref="StoreErrorCode.Compacted"/> when they are no longer kept.
    /// </summary>
    internal HistoryRead ReadHistory(string prefix, long from, int maxEvents)
    {
        lock (_lock)
        {
            if (from < _compactRevision)
                throw new StoreException(StoreErrorCode.Compacted,
                    $"revision {from} is compacted: the history kept starts at {_compactRevision}; read the prefix and watch from its revision + 1")
                { CompactRevision = _compactRevision };
            int lo = 0, hi = _history.Count;
            while (lo < hi)
            {
                int mid = (lo + hi) >>> 1;
                if (_history[mid].Revision < from) lo = mid + 1; else hi = mid;
            }
            var events = new List<WatchEvent>();
            long next = from;
            int i = lo;
            for (; i < _history.Count && events.Count < maxEvents; i++)
            {
                foreach (var e in _history[i].Events)
                    if (e.Kv.Key.StartsWith(prefix, StringComparison.Ordinal)) events.Add(e);
                next = _history[i].Revision + 1;
            }
            if (i < _history.Count) return new HistoryRead(events, next, null);
            return new HistoryRead(events, Math.Max(next, _revision + 1), _changed.Task);
        }
    }

    /// <inheritdoc/>
    public void WriteSnapshot(Stream destination)
    {
        var w = new KvWriter();
        lock (_lock)
        {
            foreach (byte b in SnapshotMagic) w.U8(b);
            w.U8(SnapshotVersion);
            w.I64(_appliedIndex);
            w.I64(_revision);
            w.I64(_compactRevision);
            w.U32((uint)_keys.Count);
            foreach (string key in _keys) KvCommandCodec.WriteKeyValue(w, _kvs[key]);
            w.U32((uint)_leases.Count);
            foreach (var (id, lease) in _leases.OrderBy(l => l.Key))
            {
                w.I64(id);
                w.I64(lease.TtlSeconds);
            }
            w.U32((uint)_dedupOrder.Count);
            foreach (var id in _dedupOrder)
            {
                w.Guid(id);
                KvCommandCodec.WriteResult(w, _dedup[id].Result);
            }
        }
        destination.Write(w.Written);
    }

    /// <inheritdoc/>
    /// <exception cref="InvalidDataException">The snapshot is not one <see cref="WriteSnapshot"/> wrote (the state is unchanged).</exception>
    public void ReadSnapshot(Stream source)
    {
        using var buffer = new MemoryStream();
        source.CopyTo(buffer);
        var fresh = new KvStateMachine(_options);
        long index, revision, compact;
        try
        {
            var r = new KvReader(buffer.GetBuffer().AsSpan(0, (int)buffer.Length));
            foreach (byte b in SnapshotMagic)
                if (r.U8() != b) throw new KvFormatException("not a store snapshot (bad magic)");
            if (r.U8() is var v && v != SnapshotVersion) throw new KvFormatException($"snapshot version {v} is not {SnapshotVersion}");
            index = r.I64();
            revision = r.I64();
            compact = r.I64();
            int n = r.Count32();
            for (int i = 0; i < n; i++)
            {
                var kv = KvCommandCodec.ReadKeyValue(ref r);
                if (!fresh._keys.Add(kv.Key)) throw new KvFormatException($"key '{kv.Key}' appears twice");
                fresh._kvs[kv.Key] = kv;
            }
            int leases = r.Count32();
            for (int i = 0; i < leases; i++)
                fresh._leases[r.I64()] = new LeaseEntry(r.I64());
            foreach (var kv in fresh._kvs.Values)
                if (kv.Lease != 0 && fresh._leases.TryGetValue(kv.Lease, out var lease)) lease.Keys.Add(kv.Key);
            int dedup = r.Count32();
            for (int i = 0; i < dedup; i++)
            {
                var id = r.Guid();
                fresh.Remember(id, KvCommandCodec.ReadResult(ref r));
            }
            r.End();
        }
        catch (KvFormatException e)
        {
            throw new InvalidDataException($"the store snapshot is corrupt: {e.Message}", e);
        }
        TaskCompletionSource signal;
        List<(TaskCompletionSource<KvResult>, KvResult)> answered = [];
        lock (_lock)
        {
            _keys = fresh._keys;
            _kvs = fresh._kvs;
            _leases = fresh._leases;
            _dedup = fresh._dedup;
            _dedupOrder = fresh._dedupOrder;
            _dedupBytes = fresh._dedupBytes;
            _history.Clear();
            _historyBytes = 0;
            _appliedIndex = index;
            _revision = revision;
            _compactRevision = Math.Max(compact, revision + 1);
            foreach (var (id, done) in _dedup)
                if (_waiters.TryRemove(id, out var waiter)) answered.Add((waiter, done.Result));
            signal = _changed;
            _changed = NewSignal();
        }
        foreach (var (waiter, result) in answered) waiter.TrySetResult(result);
        signal.TrySetResult();
        LeaseChanged?.Invoke(new LeaseChange(LeaseChangeKind.Reset, 0, 0));
    }

    private static TaskCompletionSource NewSignal() => new(TaskCreationOptions.RunContinuationsAsynchronously);
}
