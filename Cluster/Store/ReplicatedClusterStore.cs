using System.Runtime.CompilerServices;
using UserOverlay.Cluster.Replication;

namespace UserOverlay.Cluster.Store;

/// <summary>Settings of a <see cref="ReplicatedClusterStore"/>.</summary>
public sealed record ReplicatedStoreOptions
{
    /// <summary>The clock the leader counts leases' time with (a fake one in tests).</summary>
    public TimeProvider Time { get; init; } = TimeProvider.System;

    /// <summary>How often the leader looks for expired leases (an expiry is noticed at most this late).</summary>
    public TimeSpan LeaseCheckInterval { get; init; } = TimeSpan.FromMilliseconds(250);

    /// <summary>The state machine's settings (the de-duplication ones must be the same on every member).</summary>
    public KvStateMachineOptions Machine { get; init; } = new();

    /// <summary>The most changes a watch reads from the history at once.</summary>
    public int WatchBatch { get; init; } = 1024;
}

/// <summary>
/// The embedded <see cref="IClusterStore"/>: a <see cref="KvStateMachine"/> fed by an <see cref="IReplicatedLog"/>
/// (Raft among the managers, or a <see cref="LocalLog"/>). Writes (transactions, lease grants, keep-alives,
/// revokes) are commands with a fresh request id, proposed to the log and answered by the local machine when it
/// applies them (the log returns only after that, so a writer reads its own write); reads and watches are served by
/// the local machine.
/// <para>
/// Leases: the member that is leader keeps every lease's deadline (renewed when it applies a keep-alive, from the
/// injected <see cref="ReplicatedStoreOptions.Time"/>), and proposes the revoke of a lease whose deadline passed;
/// when a member becomes leader every lease gets its full TTL again (as etcd). Followers keep no deadlines.
/// </para>
/// <para>
/// Watches read the machine's bounded history from a cursor, so a slow watcher costs the writers nothing: one
/// that falls further behind than the history gets <see cref="StoreErrorCode.Compacted"/>. Disposal (which disposes
/// the log too — the store owns it) ends every watch with <see cref="StoreErrorCode.Closed"/> and refuses every
/// later call the same way. Every failure is a <see cref="StoreException"/>; a log's own exception is wrapped as
/// <see cref="StoreErrorCode.Unavailable"/>. A watch that starts at revision 0 or less starts at the next change (etcd's "now").
/// </para>
/// </summary>
public sealed class ReplicatedClusterStore : IClusterStore
{
    private readonly IReplicatedLog _log;
    private readonly ReplicatedStoreOptions _options;
    private readonly CancellationTokenSource _closed = new();
    private readonly Lock _leaseLock = new();
    private readonly Dictionary<long, (long Deadline, long TtlSeconds)> _deadlines = [];
    private bool _leader;
    private int _started, _disposed;
    private Task _expiry = Task.CompletedTask;

    /// <summary>A store over <paramref name="log"/> (started by <see cref="StartAsync"/>, disposed with the store).</summary>
    public ReplicatedClusterStore(IReplicatedLog log, ReplicatedStoreOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(log);
        _log = log;
        _options = options ?? new ReplicatedStoreOptions();
        if (_options.LeaseCheckInterval <= TimeSpan.Zero)
            throw new ArgumentOutOfRangeException(nameof(options), _options.LeaseCheckInterval, "LeaseCheckInterval: must be positive");
        Machine = new KvStateMachine(_options.Machine);
        Machine.LeaseChanged += OnLeaseChanged;
        _log.LeadershipChanged += OnLeadershipChanged;
    }

    /// <summary>The local state machine (for diagnostics and tests).</summary>
    public KvStateMachine Machine { get; }

    /// <summary>The log (for diagnostics and tests).</summary>
    public IReplicatedLog Log => _log;

    /// <inheritdoc/>
    public string Location => _log.Location;

    /// <inheritdoc/>
    public long Revision => Machine.Revision;

    /// <summary>How many leases this member counts time for (non-zero only on the leader).</summary>
    public int LeasesTimed { get { lock (_leaseLock) return _deadlines.Count; } }

    /// <summary>
    /// Starts the log with the machine (loading its saved state) and the leader's lease clock. Errors of the log's
    /// start (a corrupt file, a directory in use) propagate as they are: they stop a daemon's start, not a request.
    /// </summary>
    public async ValueTask StartAsync(CancellationToken cancellationToken = default)
    {
        ThrowIfClosed();
        if (Interlocked.Exchange(ref _started, 1) != 0) throw new InvalidOperationException("the store is started already");
        try { await _log.StartAsync(Machine, cancellationToken).ConfigureAwait(false); }
        catch
        {
            Volatile.Write(ref _started, 0);
            throw;
        }
        if (_log.IsLeader) OnLeadershipChanged(true);
        _expiry = Task.Run(ExpireLeasesAsync);
    }

    /// <inheritdoc/>
    public ValueTask<RangeResult> GetAsync(string key, CancellationToken cancellationToken = default)
    {
        ThrowIfUnusable();
        if (KvValidation.CheckKey(key, "key", allowEmpty: false) is { } e) throw e;
        return ValueTask.FromResult(Machine.Get(key));
    }

    /// <inheritdoc/>
    public ValueTask<RangeResult> RangeAsync(string prefix, int limit = 0, CancellationToken cancellationToken = default)
    {
        ThrowIfUnusable();
        if (KvValidation.CheckKey(prefix, "prefix", allowEmpty: true) is { } e) throw e;
        if (limit < 0) throw new StoreException(StoreErrorCode.InvalidArgument, $"limit: {limit} is negative");
        return ValueTask.FromResult(Machine.Range(prefix, limit));
    }

    /// <inheritdoc/>
    public async ValueTask<TxnResult> TxnAsync(TxnRequest request, CancellationToken cancellationToken = default)
    {
        var result = await ProposeAsync(new TxnCommand(Guid.NewGuid(), request), cancellationToken).ConfigureAwait(false);
        return result.Txn ?? throw Unexpected(result);
    }

    /// <inheritdoc/>
    public async ValueTask<Lease> GrantLeaseAsync(TimeSpan ttl, CancellationToken cancellationToken = default)
    {
        ThrowIfUnusable();
        long seconds = KvValidation.TtlSeconds(ttl, out var e);
        if (e is not null) throw e;
        var result = await ProposeAsync(new LeaseGrantCommand(Guid.NewGuid(), seconds), cancellationToken).ConfigureAwait(false);
        return result.Lease ?? throw Unexpected(result);
    }

    /// <inheritdoc/>
    public async ValueTask<TimeSpan> KeepAliveAsync(long leaseId, CancellationToken cancellationToken = default)
    {
        ThrowIfUnusable();
        if (leaseId <= 0) throw new StoreException(StoreErrorCode.LeaseNotFound, $"lease {leaseId} not found (lease ids are positive)");
        var result = await ProposeAsync(new LeaseKeepAliveCommand(Guid.NewGuid(), leaseId), cancellationToken).ConfigureAwait(false);
        return TimeSpan.FromSeconds(result.TtlSeconds);
    }

    /// <inheritdoc/>
    public async ValueTask RevokeLeaseAsync(long leaseId, CancellationToken cancellationToken = default)
    {
        ThrowIfUnusable();
        if (leaseId <= 0) return;
        await ProposeAsync(new LeaseRevokeCommand(Guid.NewGuid(), leaseId), cancellationToken).ConfigureAwait(false);
    }

    /// <summary>
    /// Waits until this member's replica has applied everything committed before the call (a no-op command through the
    /// log), then returns its revision: a follower's reads after it see every write that returned before it, anywhere.
    /// </summary>
    public async ValueTask<long> SyncAsync(CancellationToken cancellationToken = default)
    {
        await ProposeAsync(new TxnCommand(Guid.NewGuid(), new TxnRequest([], [])), cancellationToken).ConfigureAwait(false);
        return Machine.Revision;
    }

    /// <summary>
    /// Proposes <paramref name="command"/> and returns the local machine's result for it (a refusal thrown). A retry
    /// of the same command object reuses its request id, so it is applied at most once.
    /// </summary>
    internal async ValueTask<KvResult> ProposeAsync(KvCommand command, CancellationToken cancellationToken = default)
    {
        ThrowIfUnusable();
        ArgumentNullException.ThrowIfNull(command);
        if (command is TxnCommand txn && KvValidation.Check(txn.Request) is { } invalid) throw invalid;
        var bytes = KvCommandCodec.Encode(command);
        Task<KvResult> answer;
        try { answer = Machine.Expect(command.RequestId); }
        catch (InvalidOperationException e) { throw new StoreException(StoreErrorCode.InvalidArgument, e.Message, e); }
        try
        {
            using var linked = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, _closed.Token);
            try
            {
                await _log.ProposeAsync(bytes, linked.Token).ConfigureAwait(false);
                // The log returns after the local apply, so the answer is there (a snapshot that covered it answers too).
                var result = await answer.WaitAsync(linked.Token).ConfigureAwait(false);
                return result.ThrowIfFailed();
            }
            catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested) { throw; }
            catch (OperationCanceledException e) when (_closed.IsCancellationRequested) { throw ClosedError(e); }
            catch (ObjectDisposedException e) { throw ClosedError(e); }
            catch (StoreException) { throw; }
            catch (Exception e) when (e is not OutOfMemoryException)
            {
                throw new StoreException(StoreErrorCode.Unavailable, $"{_log.Location}: the log failed: {e.Message}", e);
            }
        }
        finally
        {
            Machine.Forget(command.RequestId);
        }
    }

    /// <inheritdoc/>
    public async IAsyncEnumerable<WatchEvent> WatchAsync(string prefix, long fromRevision, [EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        ThrowIfUnusable();
        if (KvValidation.CheckKey(prefix, "prefix", allowEmpty: true) is { } e) throw e;
        long cursor = fromRevision > 0 ? fromRevision : Machine.Revision + 1;
        using var linked = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, _closed.Token);
        while (true)
        {
            if (cancellationToken.IsCancellationRequested) yield break;
            ThrowIfClosed();
            var read = Machine.ReadHistory(prefix, cursor, _options.WatchBatch);
            foreach (var ev in read.Events)
                yield return ev;
            cursor = read.Next;
            if (read.Changed is null) continue;
            if (!await WaitAsync(read.Changed, linked.Token).ConfigureAwait(false))
            {
                if (cancellationToken.IsCancellationRequested) yield break;
                ThrowIfClosed();
            }
        }
    }

    private static async Task<bool> WaitAsync(Task changed, CancellationToken token)
    {
        try
        {
            await changed.WaitAsync(token).ConfigureAwait(false);
            return true;
        }
        catch (OperationCanceledException) { return false; }
    }

    // Lease time, kept by the leader only.

    private void OnLeadershipChanged(bool leader)
    {
        lock (_leaseLock)
        {
            _leader = leader;
            _deadlines.Clear();
            if (leader) RestartAllDeadlines();
        }
    }

    /// <summary>Every lease gets its full TTL from now (under the lease lock).</summary>
    private void RestartAllDeadlines()
    {
        long now = _options.Time.GetTimestamp();
        foreach (var (id, ttl) in Machine.Leases())
            _deadlines[id] = (Deadline(now, ttl), ttl);
    }

    private long Deadline(long now, long ttlSeconds) =>
        now + (long)Math.Min(ttlSeconds * (double)_options.Time.TimestampFrequency, long.MaxValue / 4);

    private void OnLeaseChanged(LeaseChange change)
    {
        lock (_leaseLock)
        {
            if (!_leader) return;
            switch (change.Kind)
            {
                case LeaseChangeKind.Granted:
                case LeaseChangeKind.Renewed:
                    _deadlines[change.Id] = (Deadline(_options.Time.GetTimestamp(), change.TtlSeconds), change.TtlSeconds);
                    break;
                case LeaseChangeKind.Revoked:
                    _deadlines.Remove(change.Id);
                    break;
                case LeaseChangeKind.Reset:
                    _deadlines.Clear();
                    RestartAllDeadlines();
                    break;
            }
        }
    }

    private async Task ExpireLeasesAsync()
    {
        var token = _closed.Token;
        while (!token.IsCancellationRequested)
        {
            try
            {
                await Task.Delay(_options.LeaseCheckInterval, _options.Time, token).ConfigureAwait(false);
                await ExpireLeasesOnceAsync(token).ConfigureAwait(false);
            }
            catch (OperationCanceledException) { return; }
            catch (StoreException e) when (e.Code == StoreErrorCode.Closed) { return; }
        }
    }

    /// <summary>
    /// One round of the leader's lease clock (the background loop runs one every
    /// <see cref="ReplicatedStoreOptions.LeaseCheckInterval"/>): proposes the revoke of every lease past its deadline.
    /// Returns how many it revoked; on a follower, none. A revoke the log refuses (no quorum) is retried next round.
    /// </summary>
    internal async Task<int> ExpireLeasesOnceAsync(CancellationToken cancellationToken = default)
    {
        List<long> expired;
        lock (_leaseLock)
        {
            if (!_leader || _deadlines.Count == 0) return 0;
            long now = _options.Time.GetTimestamp();
            expired = [.. _deadlines.Where(d => d.Value.Deadline <= now).Select(d => d.Key).Order()];
        }
        int revoked = 0;
        foreach (long id in expired)
        {
            try { await ProposeAsync(new LeaseRevokeCommand(Guid.NewGuid(), id), cancellationToken).ConfigureAwait(false); }
            catch (StoreException e) when (e.Code == StoreErrorCode.Unavailable) { break; }
            revoked++;
        }
        return revoked;
    }

    private StoreException Unexpected(KvResult result) =>
        new(StoreErrorCode.Unavailable, $"{_log.Location}: the state machine answered an unexpected result ({result})");

    private void ThrowIfUnusable()
    {
        ThrowIfClosed();
        if (Volatile.Read(ref _started) == 0)
            throw new StoreException(StoreErrorCode.Unavailable, $"{_log.Location}: the store is not started (call StartAsync)");
    }

    private void ThrowIfClosed()
    {
        if (Volatile.Read(ref _disposed) != 0) throw ClosedError(null);
    }

    private StoreException ClosedError(Exception? inner) => new(StoreErrorCode.Closed, $"{_log.Location}: the store is closed", inner);

    /// <summary>Ends every watch, stops the lease clock and disposes the log; later calls get <see cref="StoreErrorCode.Closed"/>.</summary>
    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0) return;
        _closed.Cancel();
        _log.LeadershipChanged -= OnLeadershipChanged;
        try { await _expiry.ConfigureAwait(false); }
        catch (OperationCanceledException) { }
        await _log.DisposeAsync().ConfigureAwait(false);
    }
}
