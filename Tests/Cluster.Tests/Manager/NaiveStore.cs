using System.Runtime.CompilerServices;
using UserOverlay.Cluster.Store;

namespace UserOverlay.Cluster.Tests.Manager;

/// <summary>
/// The store contract's transactions and reads, the plainest way: one lock, one dictionary, one revision counter —
/// a model to test the managers' compare-and-swap logic against (watches kept as a full history; leases are not modelled). Several
/// managers sharing one instance race exactly as managers sharing a replicated store do, since a transaction is
/// atomic either way. Each call yields first, so concurrent callers interleave between their reads and writes.
/// </summary>
internal sealed class NaiveStore : IClusterStore
{
    private readonly Lock _lock = new();
    private readonly SortedDictionary<string, KeyValue> _kvs = new(StringComparer.Ordinal);
    private readonly List<WatchEvent> _history = [];
    private TaskCompletionSource _changed = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private long _revision = 1;

    public string Location => "naive";

    public long Revision { get { lock (_lock) return _revision; } }

    public int Transactions { get; private set; }

    public async ValueTask<RangeResult> GetAsync(string key, CancellationToken cancellationToken = default)
    {
        await Task.Yield();
        lock (_lock) return new RangeResult(_kvs.TryGetValue(key, out var kv) ? [kv] : [], _revision);
    }

    public async ValueTask<RangeResult> RangeAsync(string prefix, int limit = 0, CancellationToken cancellationToken = default)
    {
        await Task.Yield();
        lock (_lock)
        {
            var all = Under(prefix);
            return limit > 0 && all.Count > limit ? new RangeResult(all[..limit], _revision, More: true) : new RangeResult(all, _revision);
        }
    }

    public async ValueTask<TxnResult> TxnAsync(TxnRequest request, CancellationToken cancellationToken = default)
    {
        await Task.Yield();
        if (request.Success.Count > StoreLimits.MaxTxnOps || (request.Failure?.Count ?? 0) > StoreLimits.MaxTxnOps || request.Compares.Count > StoreLimits.MaxTxnOps)
            throw new StoreException(StoreErrorCode.TooLarge, "too many operations");
        lock (_lock)
        {
            Transactions++;
            bool ok = request.Compares.All(Holds);
            var ops = ok ? request.Success : request.Failure ?? [];
            long next = _revision + 1;
            bool wrote = false;
            var responses = new List<OpResponse>();
            foreach (var op in ops)
            {
                switch (op.Kind)
                {
                    case OpKind.Range:
                        responses.Add(new OpResponse(op.Prefix ? Under(op.Key) : _kvs.TryGetValue(op.Key, out var r) ? [r] : []));
                        break;
                    case OpKind.Put:
                        _kvs.TryGetValue(op.Key, out var prev);
                        var put = _kvs[op.Key] = new KeyValue(op.Key, op.Value!, prev?.CreateRevision ?? next, next, (prev?.Version ?? 0) + 1, op.Lease);
                        _history.Add(new WatchEvent(WatchEventType.Put, put, prev));
                        wrote = true;
                        responses.Add(new OpResponse([], Previous: prev));
                        break;
                    case OpKind.Delete:
                        var gone = op.Prefix ? Under(op.Key) : _kvs.TryGetValue(op.Key, out var d) ? [d] : [];
                        foreach (var g in gone)
                        {
                            _kvs.Remove(g.Key);
                            _history.Add(new WatchEvent(WatchEventType.Delete, g with { ModRevision = next }, g));
                        }
                        wrote |= gone.Count > 0;
                        responses.Add(new OpResponse([], Deleted: gone.Count));
                        break;
                }
            }
            if (wrote)
            {
                _revision = next;
                _changed.TrySetResult();
                _changed = new(TaskCreationOptions.RunContinuationsAsynchronously);
            }
            return new TxnResult(ok, _revision, responses);
        }
    }

    public async IAsyncEnumerable<WatchEvent> WatchAsync(string prefix, long fromRevision, [EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        long next = fromRevision;
        while (!cancellationToken.IsCancellationRequested)
        {
            List<WatchEvent> batch;
            Task changed;
            lock (_lock)
            {
                batch = [.. _history.Where(e => e.Revision >= next && e.Kv.Key.StartsWith(prefix, StringComparison.Ordinal))];
                next = _revision + 1;
                changed = _changed.Task;
            }
            foreach (var e in batch) yield return e;
            try { await changed.WaitAsync(cancellationToken); }
            catch (OperationCanceledException) { yield break; }
        }
    }

    public ValueTask<Lease> GrantLeaseAsync(TimeSpan ttl, CancellationToken cancellationToken = default) => throw new NotSupportedException();

    public ValueTask<TimeSpan> KeepAliveAsync(long leaseId, CancellationToken cancellationToken = default) => throw new NotSupportedException();

    public ValueTask RevokeLeaseAsync(long leaseId, CancellationToken cancellationToken = default) => throw new NotSupportedException();

    public ValueTask DisposeAsync() => ValueTask.CompletedTask;

    private List<KeyValue> Under(string prefix) => [.. _kvs.Values.Where(kv => kv.Key.StartsWith(prefix, StringComparison.Ordinal))];

    private bool Holds(Compare c)
    {
        _kvs.TryGetValue(c.Key, out var kv);
        if (c.Target == CompareTarget.Value)
        {
            if (kv is null) return c.Result == CompareResult.NotEqual;
            int cmp = kv.Value.AsSpan().SequenceCompareTo(c.Value);
            return Result(cmp, c.Result);
        }
        long actual = c.Target switch
        {
            CompareTarget.Version => kv?.Version ?? 0,
            CompareTarget.CreateRevision => kv?.CreateRevision ?? 0,
            CompareTarget.ModRevision => kv?.ModRevision ?? 0,
            CompareTarget.Lease => kv?.Lease ?? 0,
            _ => throw new SwitchExpressionException(c.Target),
        };
        return Result(actual.CompareTo(c.Number), c.Result);
    }

    private static bool Result(int cmp, CompareResult want) => want switch
    {
        CompareResult.Equal => cmp == 0,
        CompareResult.NotEqual => cmp != 0,
        CompareResult.Less => cmp < 0,
        CompareResult.Greater => cmp > 0,
        _ => false,
    };
}
