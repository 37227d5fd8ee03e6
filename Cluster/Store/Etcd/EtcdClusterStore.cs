using System.Net.Security;
using System.Net.Sockets;
using System.Runtime.CompilerServices;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using System.Text;
using Etcdserverpb;
using Google.Protobuf;
using Grpc.Core;
using Grpc.Net.Client;
using Grpc.Net.Client.Balancer;
using Grpc.Net.Client.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Epb = Etcdserverpb;


namespace UserOverlay.Cluster.Store.Etcd;

/// <summary>
/// <see cref="IClusterStore"/> over a real etcd v3 cluster, through the generated gRPC clients of dotnet-etcd
/// (KV, Watch, Lease). Every key lives under <see cref="EtcdStoreOptions.KeyPrefix"/>; keys come back stripped.
/// <para>
/// Revisions are etcd's own, unshifted: an empty etcd is at revision 1, as the embedded store, and every write
/// (this cluster's or anyone else's in the same etcd) advances it. So on a dedicated etcd the revisions match the
/// embedded store's exactly; on a shared one they still only grow, one per changing transaction of this store, but
/// with gaps. <see cref="Revision"/> is the highest revision any response (reads, writes, watches) has reported.
/// </para>
/// <para>
/// Where etcd differs from the contract, the store bridges it: a <see cref="CompareTarget.Value"/>
/// <see cref="CompareResult.NotEqual"/> compare on a missing key holds (etcd's compare would fail): such a
/// transaction reads the compared keys first and then runs nested in one transaction guarded on their revisions.
/// Limits (<see cref="StoreLimits"/>) are checked before sending; etcd itself must accept requests of <see cref="StoreLimits.MaxTxnBytes"/> plus the
/// prefixes (run it with <c>--max-request-bytes=2097152</c>; its default of 1.5 MiB is just short).
/// </para>
/// <para>
/// Failures: calls retry on another member while no member answered (connection refused, no leader) up to
/// <see cref="EtcdStoreOptions.RequestTimeout"/>, then throw <see cref="StoreErrorCode.Unavailable"/>; a write whose
/// answer was lost on the way is not retried (it may have applied). Nothing but <see cref="StoreException"/> (and
/// <see cref="OperationCanceledException"/> for the caller's own cancellation) leaves a call.
/// </para>
/// </summary>
public sealed class EtcdClusterStore : IClusterStore
{
    private readonly EtcdStoreOptions _options;
    private readonly GrpcChannel _channel;
    private readonly ServiceProvider? _services;
    private readonly KV.KVClient _kv;
    private readonly Watch.WatchClient _watch;
    private readonly Epb.Lease.LeaseClient _lease;
    private readonly string _prefix;
    private readonly ByteString _prefixBytes;
    private readonly ByteString _prefixEnd;
    private readonly CancellationTokenSource _closed = new();
    private long _revision;
    private long _compactedTo;
    private int _disposed;

    private EtcdClusterStore(EtcdStoreOptions options)
    {
        _options = options;
        _prefix = options.KeyPrefix;
        _prefixBytes = ByteString.CopyFromUtf8(_prefix);
        _prefixEnd = RangeEnd(_prefixBytes);
        (_channel, _services) = CreateChannel(options);
        _kv = new KV.KVClient(_channel);
        _watch = new Watch.WatchClient(_channel);
        _lease = new Epb.Lease.LeaseClient(_channel);
        Location = $"etcd:{string.Join(',', options.Endpoints.Select(e => e.GetLeftPart(UriPartial.Authority)))}{_prefix}";
    }

    /// <summary>
    /// Connects to etcd and reads its revision. Throws <see cref="ArgumentException"/> for bad options (naming the
    /// field) and <see cref="StoreErrorCode.Unavailable"/> when no member answers within the request timeout.
    /// </summary>
    public static async Task<EtcdClusterStore> ConnectAsync(EtcdStoreOptions options, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(options);
        if (options.Validate() is { } problem) throw new ArgumentException("etcd store: " + problem, nameof(options));
        var store = new EtcdClusterStore(options);
        try
        {
            // A read of one key under the prefix: it reports the revision and proves a member answers.
            await store.GetAsync("\0", cancellationToken).ConfigureAwait(false);
            return store;
        }
        catch
        {
            await store.DisposeAsync().ConfigureAwait(false);
            throw;
        }
    }

    /// <inheritdoc />
    public string Location { get; }

    /// <inheritdoc />
    public long Revision => Volatile.Read(ref _revision);

    /// <inheritdoc />
    public async ValueTask<RangeResult> GetAsync(string key, CancellationToken cancellationToken = default)
    {
        if (KvValidation.CheckKey(key, "key", allowEmpty: false) is { } bad) throw bad;
        var request = new RangeRequest { Key = Key(key) };
        var response = await CallAsync(o => _kv.RangeAsync(request, o).ResponseAsync, Retry.Always, "get", cancellationToken).ConfigureAwait(false);
        return new RangeResult(Kvs(response.Kvs), response.Header.Revision, response.More);
    }

    /// <inheritdoc />
    public async ValueTask<RangeResult> RangeAsync(string prefix, int limit = 0, CancellationToken cancellationToken = default)
    {
        if (KvValidation.CheckKey(prefix, "prefix", allowEmpty: true) is { } bad) throw bad;
        if (limit < 0) throw new StoreException(StoreErrorCode.InvalidArgument, $"limit: {limit} is negative");
        var request = PrefixRange(prefix);
        request.Limit = limit;
        var response = await CallAsync(o => _kv.RangeAsync(request, o).ResponseAsync, Retry.Always, "range", cancellationToken).ConfigureAwait(false);
        return new RangeResult(Kvs(response.Kvs), response.Header.Revision, response.More);
    }

    /// <inheritdoc />
    public async ValueTask<TxnResult> TxnAsync(TxnRequest request, CancellationToken cancellationToken = default)
    {
        ThrowIfClosed();
        if (KvValidation.Check(request) is { } bad) throw bad;
        var (response, revision) = await RunTxnAsync(request, cancellationToken).ConfigureAwait(false);
        var responses = new OpResponse[response.Responses.Count];
        for (int i = 0; i < responses.Length; i++)
        {
            var r = response.Responses[i];
            responses[i] = r.ResponseCase switch
            {
                ResponseOp.ResponseOneofCase.ResponseRange => new OpResponse(Kvs(r.ResponseRange.Kvs)),
                ResponseOp.ResponseOneofCase.ResponsePut => new OpResponse([], Previous: r.ResponsePut.PrevKv is { } p ? Kv(p) : null),
                ResponseOp.ResponseOneofCase.ResponseDeleteRange => new OpResponse([], Deleted: r.ResponseDeleteRange.Deleted),
                _ => throw new StoreException(StoreErrorCode.Unavailable, $"{Location}: txn: etcd answered operation {i} with {r.ResponseCase}"),
            };
        }
        await CompactIfDueAsync(revision).ConfigureAwait(false);
        return new TxnResult(response.Succeeded, revision, responses);
    }

    /// <summary>
    /// Grants a lease (whole seconds, at least 1 s). etcd raises a TTL under its minimum (1.5 × its election
    /// timeout: 2 s with etcd's defaults) to that minimum; the returned <see cref="Lease.Ttl"/> is what etcd granted.
    /// </summary>
    public async ValueTask<Lease> GrantLeaseAsync(TimeSpan ttl, CancellationToken cancellationToken = default)
    {
        ThrowIfClosed();
        long seconds = KvValidation.TtlSeconds(ttl, out var bad);
        if (bad is not null) throw bad;
        var request = new LeaseGrantRequest { TTL = seconds };
        var response = await CallAsync(o => _lease.LeaseGrantAsync(request, o).ResponseAsync, Retry.IfNotSent, "lease grant", cancellationToken).ConfigureAwait(false);
        if (!string.IsNullOrEmpty(response.Error))
            throw new StoreException(StoreErrorCode.Unavailable, $"{Location}: lease grant: {response.Error}");
        return new Lease(response.ID, TimeSpan.FromSeconds(response.TTL));
    }

    /// <inheritdoc />
    public async ValueTask<TimeSpan> KeepAliveAsync(long leaseId, CancellationToken cancellationToken = default)
    {
        ThrowIfClosed();
        long ttl = await CallAsync(async o =>
        {
            // One renewal per call: a keep-alive stream that sends one request and reads its answer.
            using var call = _lease.LeaseKeepAlive(o);
            await call.RequestStream.WriteAsync(new LeaseKeepAliveRequest { ID = leaseId }).ConfigureAwait(false);
            await call.RequestStream.CompleteAsync().ConfigureAwait(false);
            if (!await call.ResponseStream.MoveNext(o.CancellationToken).ConfigureAwait(false))
                throw new RpcException(new Status(StatusCode.Unavailable, "the keep-alive stream ended without an answer"));
            Seen(call.ResponseStream.Current.Header);
            return call.ResponseStream.Current.TTL;
        }, Retry.Always, "keep-alive", cancellationToken).ConfigureAwait(false);
        if (ttl <= 0) throw new StoreException(StoreErrorCode.LeaseNotFound, $"{Location}: lease {leaseId:x} does not exist (expired or revoked)");
        return TimeSpan.FromSeconds(ttl);
    }

    /// <inheritdoc />
    public async ValueTask RevokeLeaseAsync(long leaseId, CancellationToken cancellationToken = default)
    {
        ThrowIfClosed();
        var request = new LeaseRevokeRequest { ID = leaseId };
        try
        {
            var response = await CallAsync(o => _lease.LeaseRevokeAsync(request, o).ResponseAsync, Retry.Always, "lease revoke", cancellationToken).ConfigureAwait(false);
            await CompactIfDueAsync(response.Header.Revision).ConfigureAwait(false);
        }
        catch (StoreException e) when (e.Code == StoreErrorCode.LeaseNotFound)
        {
            // Revoking an unknown lease is not an error (the contract, and idempotent retries).
        }
    }

    /// <inheritdoc />
    public async IAsyncEnumerable<WatchEvent> WatchAsync(string prefix, long fromRevision, [EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        ThrowIfClosed();
        if (KvValidation.CheckKey(prefix, "prefix", allowEmpty: true) is { } bad) throw bad;
        var range = PrefixRange(prefix);
        await using var session = new WatchSession(this, range.Key, range.RangeEnd, fromRevision > 0 ? fromRevision : 0, cancellationToken);
        while (await session.NextAsync().ConfigureAwait(false) is { } batch)
            foreach (var e in batch)
                yield return e;
    }

    /// <summary>Closes the connection; running watches end with <see cref="StoreErrorCode.Closed"/>, later calls are refused so.</summary>
    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0) return;
        _closed.Cancel();
        try { await _channel.ShutdownAsync().ConfigureAwait(false); }
        catch (Exception) { /* the channel is going away either way */ }
        _channel.Dispose();
        if (_services is not null) await _services.DisposeAsync().ConfigureAwait(false);
    }

    // ---- Watches ----

    /// <summary>One watch: a Watch stream, reopened from the last delivered revision + 1 whenever it breaks.</summary>
    private sealed class WatchSession(EtcdClusterStore store, ByteString key, ByteString rangeEnd, long next, CancellationToken caller) : IAsyncDisposable
    {
        private readonly CancellationTokenSource _stop = CancellationTokenSource.CreateLinkedTokenSource(caller, store._closed.Token);
        private AsyncDuplexStreamingCall<WatchRequest, WatchResponse>? _call;
        private long _next = next; // 0: from the revision after the one the watch was created at
        private DateTime? _failingSince;
        private int _attempt;

        /// <summary>The events of the next revisions, or null once the caller cancelled.</summary>
        public async Task<List<WatchEvent>?> NextAsync()
        {
            while (true)
            {
                if (store._closed.IsCancellationRequested) throw store.ClosedError(null);
                if (caller.IsCancellationRequested) return null;
                try
                {
                    if (_call is null)
                    {
                        _call = store._watch.Watch(cancellationToken: _stop.Token);
                        var create = new WatchCreateRequest { Key = key, RangeEnd = rangeEnd, StartRevision = _next, PrevKv = true };
                        await _call.RequestStream.WriteAsync(new WatchRequest { CreateRequest = create }, _stop.Token).ConfigureAwait(false);
                    }
                    if (!await _call.ResponseStream.MoveNext(_stop.Token).ConfigureAwait(false))
                        throw new RpcException(new Status(StatusCode.Unavailable, "the watch stream ended"));
                    var response = _call.ResponseStream.Current;
                    store.Seen(response.Header);
                    if (response.CompactRevision != 0)
                        throw new StoreException(StoreErrorCode.Compacted,
                            $"{store.Location}: watch from revision {_next}: history before {response.CompactRevision} was compacted; read and watch from the read's revision + 1")
                        { CompactRevision = response.CompactRevision };
                    if (response.Canceled)
                        throw new RpcException(new Status(StatusCode.Unavailable, "etcd cancelled the watch: " + response.CancelReason));
                    if (response.Created)
                    {
                        _failingSince = null;
                        _attempt = 0;
                        if (_next == 0) _next = response.Header.Revision + 1;
                    }
                    if (response.Events.Count == 0) continue;
                    var batch = new List<WatchEvent>(response.Events.Count);
                    foreach (var e in response.Events)
                    {
                        var kv = store.Kv(e.Kv);
                        var prev = e.PrevKv is { } p ? store.Kv(p) : null;
                        batch.Add(e.Type == Mvccpb.Event.Types.EventType.Delete
                            ? new WatchEvent(WatchEventType.Delete, kv with { Value = [], CreateRevision = 0, Version = 0, Lease = 0 }, prev)
                            : new WatchEvent(WatchEventType.Put, kv, prev));
                    }
                    // etcd sends a revision's events together (no fragmenting asked for): resume after the last.
                    _next = batch[^1].Revision + 1;
                    return batch;
                }
                catch (StoreException) { throw; }
                catch (Exception e) when (e is RpcException or OperationCanceledException or IOException or ObjectDisposedException or InvalidOperationException)
                {
                    if (store._closed.IsCancellationRequested) throw store.ClosedError(e);
                    if (caller.IsCancellationRequested) return null;
                    DropCall();
                    var now = DateTime.UtcNow;
                    _failingSince ??= now;
                    if (now - _failingSince > store._options.WatchReconnectTimeout)
                        throw new StoreException(StoreErrorCode.Unavailable,
                            $"{store.Location}: watch: no member answered for {store._options.WatchReconnectTimeout} (resumes from revision {_next}): {e.Message}", e);
                    try { await Task.Delay(Backoff(_attempt++), _stop.Token).ConfigureAwait(false); }
                    catch (OperationCanceledException) { /* checked at the loop's top */ }
                }
            }
        }

        private void DropCall()
        {
            _call?.Dispose();
            _call = null;
        }

        public ValueTask DisposeAsync()
        {
            DropCall();
            _stop.Dispose();
            return ValueTask.CompletedTask;
        }
    }

    // ---- Calls, retries and errors ----

    private enum Retry
    {
        /// <summary>Reads, renewals, revocations: safe to send again.</summary>
        Always,
        /// <summary>Writes: sent again only when the first one certainly did not reach etcd (or etcd refused it before applying).</summary>
        IfNotSent,
    }

    private static TimeSpan Backoff(int attempt) => TimeSpan.FromMilliseconds(Math.Min(1000, 25 << Math.Min(attempt, 6)));

    private async Task<T> CallAsync<T>(Func<CallOptions, Task<T>> call, Retry retry, string what, CancellationToken cancellationToken)
    {
        ThrowIfClosed();
        using var linked = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, _closed.Token);
        var deadline = DateTime.UtcNow + _options.RequestTimeout;
        for (int attempt = 0; ; attempt++)
        {
            Exception failure;
            try
            {
                T result = await call(new CallOptions(deadline: deadline, cancellationToken: linked.Token)).ConfigureAwait(false);
                if (result is IMessage m && HeaderOf(m) is { } header) Seen(header);
                return result;
            }
            catch (Exception e) when (e is RpcException or OperationCanceledException or ObjectDisposedException or IOException or InvalidOperationException)
            {
                failure = e;
            }
            if (_closed.IsCancellationRequested) throw ClosedError(failure);
            cancellationToken.ThrowIfCancellationRequested();
            if (failure is not RpcException rpc) throw new StoreException(StoreErrorCode.Unavailable, $"{Location}: {what}: {failure.Message}", failure);
            if (!Retryable(rpc, retry) || DateTime.UtcNow + Backoff(attempt) >= deadline) throw Map(rpc, what);
            try { await Task.Delay(Backoff(attempt), linked.Token).ConfigureAwait(false); }
            catch (OperationCanceledException e)
            {
                if (_closed.IsCancellationRequested) throw ClosedError(e);
                throw;
            }
        }
    }

    private static ResponseHeader? HeaderOf(IMessage m) => m switch
    {
        RangeResponse r => r.Header,
        Epb.TxnResponse r => r.Header,
        LeaseGrantResponse r => r.Header,
        LeaseRevokeResponse r => r.Header,
        CompactionResponse r => r.Header,
        _ => null,
    };

    private static bool Retryable(RpcException e, Retry retry)
    {
        if (e.StatusCode != StatusCode.Unavailable && e.StatusCode != StatusCode.ResourceExhausted) return false;
        string detail = e.Status.Detail ?? "";
        // Refused before it was applied, whatever the request: no connection at all, or etcd without a leader.
        if (NotSent(e) || detail.Contains("no leader", StringComparison.Ordinal) || detail.Contains("not capable", StringComparison.Ordinal)
            || detail.Contains("too many requests", StringComparison.Ordinal))
            return true;
        return retry == Retry.Always && e.StatusCode == StatusCode.Unavailable;
    }

    private static bool NotSent(RpcException e)
    {
        if (e.Status.Detail?.Contains("Error connecting to subchannel", StringComparison.Ordinal) == true) return true;
        for (Exception? x = e.Status.DebugException; x is not null; x = x.InnerException)
            if (x is SocketException { SocketErrorCode: SocketError.ConnectionRefused or SocketError.HostUnreachable or SocketError.NetworkUnreachable or SocketError.TimedOut })
                return true;
        return false;
    }

    private StoreException Map(RpcException e, string what)
    {
        string detail = e.Status.Detail ?? e.Message;
        string message = $"{Location}: {what}: {detail}";
        return e.StatusCode switch
        {
            StatusCode.NotFound when detail.Contains("lease", StringComparison.Ordinal) => new StoreException(StoreErrorCode.LeaseNotFound, message, e),
            StatusCode.InvalidArgument when detail.Contains("too large", StringComparison.Ordinal) || detail.Contains("too many operations", StringComparison.Ordinal)
                => new StoreException(StoreErrorCode.TooLarge, message, e),
            StatusCode.ResourceExhausted when detail.Contains("larger than max", StringComparison.Ordinal) || detail.Contains("message size", StringComparison.OrdinalIgnoreCase)
                => new StoreException(StoreErrorCode.TooLarge, message, e),
            StatusCode.InvalidArgument or StatusCode.FailedPrecondition => new StoreException(StoreErrorCode.InvalidArgument, message, e),
            StatusCode.OutOfRange when detail.Contains("compacted", StringComparison.Ordinal) => new StoreException(StoreErrorCode.Compacted, message, e),
            StatusCode.OutOfRange => new StoreException(StoreErrorCode.InvalidArgument, message, e),
            StatusCode.DeadlineExceeded => new StoreException(StoreErrorCode.Unavailable, $"{Location}: {what}: no etcd member answered within {_options.RequestTimeout} ({detail})", e),
            _ => new StoreException(StoreErrorCode.Unavailable, message, e),
        };
    }

    private void Seen(ResponseHeader? header)
    {
        if (header is null) return;
        long r = header.Revision;
        long current = Volatile.Read(ref _revision);
        while (r > current)
        {
            long was = Interlocked.CompareExchange(ref _revision, r, current);
            if (was == current) return;
            current = was;
        }
    }

    private void ThrowIfClosed()
    {
        if (Volatile.Read(ref _disposed) != 0) throw ClosedError(null);
    }

    private StoreException ClosedError(Exception? inner) => new(StoreErrorCode.Closed, $"{Location}: the store is closed", inner);

    /// <summary>With <see cref="EtcdStoreOptions.CompactionRetention"/>: compacts to <paramref name="revision"/> − retention, in steps of a quarter of it.</summary>
    private async Task CompactIfDueAsync(long revision)
    {
        int keep = _options.CompactionRetention;
        if (keep <= 0) return;
        long target = revision - keep;
        long done = Volatile.Read(ref _compactedTo);
        if (target < done + Math.Max(1, keep / 4) || Interlocked.CompareExchange(ref _compactedTo, target, done) != done) return;
        try
        {
            var request = new CompactionRequest { Revision = target };
            await CallAsync(o => _kv.CompactAsync(request, o).ResponseAsync, Retry.Always, "compact", CancellationToken.None).ConfigureAwait(false);
        }
        catch (StoreException)
        {
            // Already compacted further (another client), or unavailable: the next write tries again.
        }
    }

    // ---- Mapping ----

    private ByteString Key(string key) => ByteString.CopyFromUtf8(_prefix + key);

    private RangeRequest PrefixRange(string prefix) =>
        prefix.Length == 0 ? new RangeRequest { Key = _prefixBytes, RangeEnd = _prefixEnd } : new RangeRequest { Key = Key(prefix), RangeEnd = RangeEnd(Key(prefix)) };

    /// <summary>etcd's range end for "every key starting with <paramref name="prefix"/>": the prefix with its last byte below 0xff incremented.</summary>
    internal static ByteString RangeEnd(ByteString prefix)
    {
        byte[] end = prefix.ToByteArray();
        for (int i = end.Length - 1; i >= 0; i--)
        {
            if (end[i] == 0xff) continue;
            end[i]++;
            return ByteString.CopyFrom(end, 0, i + 1);
        }
        return ByteString.CopyFrom(0); // all 0xff: to the end of the key space
    }

    private KeyValue Kv(Mvccpb.KeyValue kv)
    {
        string key = kv.Key.ToStringUtf8();
        if (key.StartsWith(_prefix, StringComparison.Ordinal)) key = key[_prefix.Length..];
        return new KeyValue(key, kv.Value.ToByteArray(), kv.CreateRevision, kv.ModRevision, kv.Version, kv.Lease);
    }

    private KeyValue[] Kvs(Google.Protobuf.Collections.RepeatedField<Mvccpb.KeyValue> kvs)
    {
        var result = new KeyValue[kvs.Count];
        for (int i = 0; i < result.Length; i++) result[i] = Kv(kvs[i]);
        return result;
    }

    /// <summary>
    /// Runs <paramref name="request"/> and returns the response of the caller's transaction with the revision after
    /// it. etcd fails every value compare on a missing key, while the contract has a missing key "not equal to
    /// anything". So a request with value-not-equal compares first reads those keys (one read-only transaction),
    /// then sends one transaction guarded on their mod revisions (so the reads still hold) whose only operation is
    /// the caller's transaction, with the compares on keys found missing dropped (they hold). When a guard fails
    /// (one of the keys changed in between) nothing was written, and it reads again, until the request timeout.
    /// The caller's operations are sent once, at one level of nesting: the request does not grow.
    /// </summary>
    private async Task<(Epb.TxnResponse Response, long Revision)> RunTxnAsync(TxnRequest request, CancellationToken cancellationToken)
    {
        var keys = request.Compares.Where(c => c.Target == CompareTarget.Value && c.Result == CompareResult.NotEqual)
            .Select(c => c.Key).Distinct(StringComparer.Ordinal).ToArray();
        if (keys.Length == 0)
        {
            var plain = BuildTxn(request, missing: null);
            var response = await CallAsync(o => _kv.TxnAsync(plain, o).ResponseAsync, Retry.IfNotSent, "txn", cancellationToken).ConfigureAwait(false);
            return (response, response.Header.Revision);
        }
        var deadline = DateTime.UtcNow + _options.RequestTimeout;
        for (int attempt = 0; ; attempt++)
        {
            var read = new Epb.TxnRequest();
            foreach (string k in keys) read.Success.Add(new RequestOp { RequestRange = new RangeRequest { Key = Key(k), KeysOnly = true } });
            var state = await CallAsync(o => _kv.TxnAsync(read, o).ResponseAsync, Retry.Always, "txn (reading its compared keys)", cancellationToken).ConfigureAwait(false);
            var guarded = new Epb.TxnRequest();
            var missing = new HashSet<string>(StringComparer.Ordinal);
            for (int i = 0; i < keys.Length; i++)
            {
                var found = state.Responses[i].ResponseRange.Kvs;
                long modRevision = found.Count == 0 ? 0 : found[0].ModRevision;
                if (found.Count == 0) missing.Add(keys[i]);
                guarded.Compare.Add(new Epb.Compare { Key = Key(keys[i]), Target = Epb.Compare.Types.CompareTarget.Mod, Result = Epb.Compare.Types.CompareResult.Equal, ModRevision = modRevision });
            }
            guarded.Success.Add(new RequestOp { RequestTxn = BuildTxn(request, missing) });
            var response = await CallAsync(o => _kv.TxnAsync(guarded, o).ResponseAsync, Retry.IfNotSent, "txn", cancellationToken).ConfigureAwait(false);
            if (response.Succeeded) return (response.Responses[0].ResponseTxn, response.Header.Revision);
            if (DateTime.UtcNow + Backoff(attempt) >= deadline)
                throw new StoreException(StoreErrorCode.Unavailable, $"{Location}: txn: its compared keys kept changing for {_options.RequestTimeout}");
            await Task.Delay(Backoff(attempt) / 5, cancellationToken).ConfigureAwait(false);
        }
    }

    /// <summary>The etcd transaction for <paramref name="request"/>, without the value-not-equal compares on <paramref name="missing"/> keys.</summary>
    private Epb.TxnRequest BuildTxn(TxnRequest request, HashSet<string>? missing)
    {
        var txn = new Epb.TxnRequest();
        foreach (var c in request.Compares)
            if (missing is null || !(c.Target == CompareTarget.Value && c.Result == CompareResult.NotEqual && missing.Contains(c.Key)))
                txn.Compare.Add(ToEtcd(c));
        foreach (var op in request.Success) txn.Success.Add(ToEtcd(op));
        if (request.Failure is not null)
            foreach (var op in request.Failure) txn.Failure.Add(ToEtcd(op));
        return txn;
    }

    private Epb.Compare ToEtcd(Compare c)
    {
        var result = new Epb.Compare
        {
            Key = Key(c.Key),
            Result = c.Result switch
            {
                CompareResult.Equal => Epb.Compare.Types.CompareResult.Equal,
                CompareResult.NotEqual => Epb.Compare.Types.CompareResult.NotEqual,
                CompareResult.Less => Epb.Compare.Types.CompareResult.Less,
                _ => Epb.Compare.Types.CompareResult.Greater,
            },
        };
        switch (c.Target)
        {
            case CompareTarget.Version: result.Target = Epb.Compare.Types.CompareTarget.Version; result.Version = c.Number; break;
            case CompareTarget.CreateRevision: result.Target = Epb.Compare.Types.CompareTarget.Create; result.CreateRevision = c.Number; break;
            case CompareTarget.ModRevision: result.Target = Epb.Compare.Types.CompareTarget.Mod; result.ModRevision = c.Number; break;
            case CompareTarget.Lease: result.Target = Epb.Compare.Types.CompareTarget.Lease; result.Lease = c.Number; break;
            default: result.Target = Epb.Compare.Types.CompareTarget.Value; result.Value = ByteString.CopyFrom(c.Value ?? []); break;
        }
        return result;
    }

    private RequestOp ToEtcd(Op op) => op.Kind switch
    {
        OpKind.Put => new RequestOp { RequestPut = new PutRequest { Key = Key(op.Key), Value = ByteString.CopyFrom(op.Value), Lease = op.Lease, PrevKv = true } },
        OpKind.Delete when op.Prefix => new RequestOp { RequestDeleteRange = DeleteRange(PrefixRange(op.Key)) },
        OpKind.Delete => new RequestOp { RequestDeleteRange = new DeleteRangeRequest { Key = Key(op.Key) } },
        _ => new RequestOp { RequestRange = op.Prefix ? PrefixRange(op.Key) : new RangeRequest { Key = Key(op.Key) } },
    };

    private static DeleteRangeRequest DeleteRange(RangeRequest range) => new() { Key = range.Key, RangeEnd = range.RangeEnd };

    // ---- The channel ----

    private static (GrpcChannel, ServiceProvider?) CreateChannel(EtcdStoreOptions options)
    {
        bool tls = options.Endpoints[0].Scheme == "https";
        var handler = new SocketsHttpHandler
        {
            ConnectTimeout = options.ConnectTimeout,
            EnableMultipleHttp2Connections = true,
            PooledConnectionIdleTimeout = Timeout.InfiniteTimeSpan,
            KeepAlivePingDelay = TimeSpan.FromSeconds(10),
            KeepAlivePingTimeout = TimeSpan.FromSeconds(5),
        };
        if (tls)
        {
            if (options.ClientCertificateFile is not null)
            {
                try { handler.SslOptions.ClientCertificates = [X509Certificate2.CreateFromPemFile(options.ClientCertificateFile, options.ClientKeyFile)]; }
                catch (CryptographicException e)
                {
                    throw new ArgumentException($"etcd store: clientCertificateFile/clientKeyFile: '{options.ClientCertificateFile}' and '{options.ClientKeyFile}' are not a PEM certificate and its key: {e.Message}", nameof(options), e);
                }
            }
            if (options.CaFile is not null)
            {
                var ca = new X509Certificate2Collection();
                try { ca.ImportFromPemFile(options.CaFile); }
                catch (CryptographicException e) { throw new ArgumentException($"etcd store: caFile: '{options.CaFile}' is not PEM: {e.Message}", nameof(options), e); }
                if (ca.Count == 0) throw new ArgumentException($"etcd store: caFile: '{options.CaFile}' holds no certificate", nameof(options));
                handler.SslOptions.RemoteCertificateValidationCallback = (_, certificate, _, errors) =>
                {
                    if (errors == SslPolicyErrors.None) return true;
                    if (certificate is null || (errors & ~SslPolicyErrors.RemoteCertificateChainErrors) != 0) return false;
                    using var chain = new X509Chain();
                    chain.ChainPolicy.TrustMode = X509ChainTrustMode.CustomRootTrust;
                    chain.ChainPolicy.CustomTrustStore.AddRange(ca);
                    chain.ChainPolicy.RevocationMode = X509RevocationMode.NoCheck;
                    using var leaf = X509CertificateLoader.LoadCertificate(certificate.GetRawCertData());
                    return chain.Build(leaf);
                };
            }
        }
        var channelOptions = new GrpcChannelOptions
        {
            HttpHandler = handler,
            DisposeHttpClient = true,
            MaxReceiveMessageSize = 64 * 1024 * 1024,
            MaxSendMessageSize = null,
            // A member that comes back is used again within a second (gRPC's default waits up to two minutes).
            InitialReconnectBackoff = TimeSpan.FromMilliseconds(50),
            MaxReconnectBackoff = TimeSpan.FromSeconds(1),
        };
        if (options.Endpoints.Count == 1)
            return (GrpcChannel.ForAddress(options.Endpoints[0], channelOptions), null);
        // Several members: one channel, a subchannel per member, round-robin over those that are up.
        var addresses = options.Endpoints.Select(e => new BalancerAddress(e.Host, e.Port)).ToArray();
        var services = new ServiceCollection();
        services.AddSingleton<ResolverFactory>(new StaticResolverFactory(_ => addresses));
        var provider = services.BuildServiceProvider();
        channelOptions.ServiceProvider = provider;
        channelOptions.Credentials = tls ? ChannelCredentials.SecureSsl : ChannelCredentials.Insecure;
        channelOptions.ServiceConfig = new ServiceConfig { LoadBalancingConfigs = { new RoundRobinConfig() } };
        return (GrpcChannel.ForAddress("static:///etcd", channelOptions), provider);
    }
}
