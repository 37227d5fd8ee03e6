using System.Runtime.CompilerServices;
using UserOverlay.Cluster.Manager;

namespace UserOverlay.Cluster.Store.Etcd;

/// <summary>
/// An <see cref="IClusterStore"/> that keeps some values sealed (<see cref="SealedValues"/>, AES-256-GCM under a key
/// the managers hold in their state directories) in the store beneath it, and hands them out opened: whoever reads
/// etcd, its snapshots or its backups sees the cluster's secrets only as ciphertext. Swarm's autolock does the same
/// for its Raft log.
/// <para>
/// Which keys are sealed is <see cref="IsSecret"/>: the cluster's record (it holds the CA's private key and the join
/// tokens) and the key rings (the network and gossip keys). Each value is sealed for its own key name, so a sealed
/// value copied under another key does not open. Everything else passes through unchanged; so do revisions, leases
/// and watches. A compare on the value of a sealed key is refused (<see cref="StoreErrorCode.InvalidArgument"/>):
/// sealing uses fresh nonces, so equal plaintexts never compare equal; compare revisions instead. A sealed key whose
/// value does not open with this key (another cluster's seal key, an altered or a plaintext value) is a
/// <see cref="StoreErrorCode.SealKey"/> refusal naming the key. Thread-safety: as the store beneath.
/// </para>
/// </summary>
/// <param name="inner">The store that holds the sealed values (disposed with this one).</param>
/// <param name="seal">The seal key (not disposed here).</param>
public sealed class SealingClusterStore(IClusterStore inner, SealedValues seal) : IClusterStore
{
    /// <summary>Whether the value of <paramref name="key"/> is sealed: the cluster record and the key rings.</summary>
    public static bool IsSecret(string key) => key == ClusterKeys.Info || key.StartsWith(ClusterKeys.Keys, StringComparison.Ordinal);

    /// <summary>The store beneath (which holds the sealed values).</summary>
    public IClusterStore Inner => inner;

    /// <inheritdoc />
    public string Location => inner.Location;

    /// <inheritdoc />
    public long Revision => inner.Revision;

    /// <inheritdoc />
    public async ValueTask<RangeResult> GetAsync(string key, CancellationToken cancellationToken = default)
    {
        var r = await inner.GetAsync(key, cancellationToken).ConfigureAwait(false);
        return r with { Kvs = Open(r.Kvs) };
    }

    /// <inheritdoc />
    public async ValueTask<RangeResult> RangeAsync(string prefix, int limit = 0, CancellationToken cancellationToken = default)
    {
        var r = await inner.RangeAsync(prefix, limit, cancellationToken).ConfigureAwait(false);
        return r with { Kvs = Open(r.Kvs) };
    }

    /// <inheritdoc />
    public async ValueTask<TxnResult> TxnAsync(TxnRequest request, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(request);
        foreach (var c in request.Compares)
            if (c is not null && c.Target == CompareTarget.Value && c.Key is not null && IsSecret(c.Key))
                throw new StoreException(StoreErrorCode.InvalidArgument, $"compares: '{c.Key}' is sealed; compare its revision, not its value");
        var sealedRequest = new TxnRequest(request.Compares, SealOps(request.Success), request.Failure is null ? null : SealOps(request.Failure));
        var r = await inner.TxnAsync(sealedRequest, cancellationToken).ConfigureAwait(false);
        return r with { Responses = [.. r.Responses.Select(o => o with { Kvs = Open(o.Kvs), Previous = o.Previous is null ? null : Open(o.Previous) })] };
    }

    /// <inheritdoc />
    public async IAsyncEnumerable<WatchEvent> WatchAsync(string prefix, long fromRevision, [EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        await foreach (var e in inner.WatchAsync(prefix, fromRevision, cancellationToken).ConfigureAwait(false))
            yield return e with { Kv = e.Type == WatchEventType.Delete ? e.Kv : Open(e.Kv), PrevKv = e.PrevKv is null ? null : Open(e.PrevKv) };
    }

    /// <inheritdoc />
    public ValueTask<Lease> GrantLeaseAsync(TimeSpan ttl, CancellationToken cancellationToken = default) => inner.GrantLeaseAsync(ttl, cancellationToken);

    /// <inheritdoc />
    public ValueTask<TimeSpan> KeepAliveAsync(long leaseId, CancellationToken cancellationToken = default) => inner.KeepAliveAsync(leaseId, cancellationToken);

    /// <inheritdoc />
    public ValueTask RevokeLeaseAsync(long leaseId, CancellationToken cancellationToken = default) => inner.RevokeLeaseAsync(leaseId, cancellationToken);

    /// <inheritdoc />
    public ValueTask DisposeAsync() => inner.DisposeAsync();

    private List<Op> SealOps(IReadOnlyList<Op> ops)
    {
        var result = new List<Op>(ops.Count);
        foreach (var op in ops)
            result.Add(op is { Kind: OpKind.Put, Value: { } v, Key: { } k } && IsSecret(k) ? op with { Value = seal.Seal(v, k) } : op);
        return result;
    }

    private List<KeyValue> Open(IReadOnlyList<KeyValue> kvs) => [.. kvs.Select(Open)];

    private KeyValue Open(KeyValue kv)
    {
        if (!IsSecret(kv.Key)) return kv;
        try { return kv with { Value = seal.Open(kv.Value, kv.Key) }; }
        catch (InvalidDataException e)
        {
            throw new StoreException(StoreErrorCode.SealKey,
                $"{inner.Location}: {e.Message}; the managers' seal key (STATE/cluster/seal.key) must be this cluster's", e);
        }
    }
}
