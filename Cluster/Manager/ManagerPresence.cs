using System.Text;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using UserOverlay.Cluster.Store;

namespace UserOverlay.Cluster.Manager;

/// <summary>
/// A manager's liveness in the store, as etcd users keep it: a key <c>presence/ID</c> (the manager's control address)
/// attached to a lease of <see cref="Ttl"/> that the manager renews every third of it. A manager that stops (killed,
/// cut off from the store) stops renewing, and the store deletes the key when the lease runs out; one that stops
/// cleanly revokes it at once. A lease lost while the store was away (expired meanwhile) is granted anew and the key
/// written again. Where several managers serve one store, <see cref="ListAsync"/> says which of them do now.
/// </summary>
public sealed partial class ManagerPresence : IAsyncDisposable
{
    private readonly IClusterStore _store;
    private readonly string _key;
    private readonly byte[] _value;
    private readonly ILogger _log;
    private readonly CancellationTokenSource _stop = new();
    private Task? _loop;
    private long _lease;
    private int _disposed;

    /// <summary>A presence for node <paramref name="nodeId"/> reached at <paramref name="controlAddress"/> (not yet written: <see cref="StartAsync"/>).</summary>
    public ManagerPresence(IClusterStore store, string nodeId, string controlAddress, TimeSpan? ttl = null, ILogger? log = null)
    {
        _store = store;
        _key = ClusterKeys.PresenceOf(nodeId);
        _value = Encoding.UTF8.GetBytes(controlAddress);
        _log = log ?? NullLogger.Instance;
        Ttl = ttl ?? TimeSpan.FromSeconds(10);
    }

    /// <summary>How long the key outlives the manager's last renewal.</summary>
    public TimeSpan Ttl { get; }

    /// <summary>The lease the key is attached to now (0 before the first write).</summary>
    public long LeaseId => Interlocked.Read(ref _lease);

    /// <summary>How many times a lost lease was granted again (the store was away longer than the TTL).</summary>
    public int Regrants { get; private set; }

    /// <summary>Writes the key under a new lease and starts renewing it.</summary>
    public async Task StartAsync(CancellationToken cancellationToken = default)
    {
        await WriteAsync(cancellationToken).ConfigureAwait(false);
        _loop = Task.Run(() => RenewAsync(_stop.Token), CancellationToken.None);
    }

    /// <summary>Stops renewing without revoking, as a killed manager would: the key goes when its lease runs out.</summary>
    public async Task AbandonAsync()
    {
        if (Volatile.Read(ref _disposed) != 0) return;
        await _stop.CancelAsync().ConfigureAwait(false);
        if (_loop is not null) await _loop.ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
    }

    /// <summary>The managers present now: node id → control address.</summary>
    public static async Task<IReadOnlyDictionary<string, string>> ListAsync(IClusterStore store, CancellationToken cancellationToken = default)
    {
        var r = await store.RangeAsync(ClusterKeys.Presence, cancellationToken: cancellationToken).ConfigureAwait(false);
        return r.Kvs.ToDictionary(kv => kv.Key[ClusterKeys.Presence.Length..], kv => Encoding.UTF8.GetString(kv.Value), StringComparer.Ordinal);
    }

    private async Task WriteAsync(CancellationToken cancellationToken)
    {
        var lease = await _store.GrantLeaseAsync(Ttl, cancellationToken).ConfigureAwait(false);
        try
        {
            await _store.TxnAsync(new TxnRequest([], [Op.Put(_key, _value, lease.Id)]), cancellationToken).ConfigureAwait(false);
        }
        catch
        {
            try { await _store.RevokeLeaseAsync(lease.Id, CancellationToken.None).ConfigureAwait(false); } catch (StoreException) { }
            throw;
        }
        Interlocked.Exchange(ref _lease, lease.Id);
    }

    private async Task RenewAsync(CancellationToken stop)
    {
        var period = TimeSpan.FromTicks(Math.Max(Ttl.Ticks / 3, TimeSpan.FromMilliseconds(200).Ticks));
        using var timer = new PeriodicTimer(period);
        try
        {
            while (await timer.WaitForNextTickAsync(stop).ConfigureAwait(false))
            {
                try { await _store.KeepAliveAsync(LeaseId, stop).ConfigureAwait(false); }
                catch (StoreException e) when (e.Code == StoreErrorCode.LeaseNotFound)
                {
                    // Expired while the store was away: the other managers saw this one go; it is back now.
                    try
                    {
                        await WriteAsync(stop).ConfigureAwait(false);
                        Regrants++;
                    }
                    catch (StoreException again) { LogRenewFailed(again.Message); }
                }
                catch (StoreException e) { LogRenewFailed(e.Message); }
            }
        }
        catch (OperationCanceledException) { }
    }

    /// <summary>Stops renewing and revokes the lease (the key goes at once); best effort when the store is away.</summary>
    public async ValueTask DisposeAsync()
    {
        await AbandonAsync().ConfigureAwait(false);
        if (Interlocked.Exchange(ref _disposed, 1) != 0) return;
        if (LeaseId != 0)
        {
            using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(2));
            try { await _store.RevokeLeaseAsync(LeaseId, timeout.Token).ConfigureAwait(false); }
            catch (Exception e) when (e is StoreException or OperationCanceledException) { LogRenewFailed(e.Message); }
        }
        _stop.Dispose();
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "cluster: renewing this manager's presence in the store failed: {Reason}")]
    private partial void LogRenewFailed(string reason);
}
