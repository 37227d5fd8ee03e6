namespace UserOverlay.Cluster.Store;

/// <summary>
/// The managers' state as etcd keeps it: a flat, ordered key space of revisioned values, changed only by
/// transactions (compare-and-swap), watched by prefix from a revision, with leases for liveness. The cluster's own
/// objects (nodes, networks, allocations, keys) are JSON values under prefixes of this space. Two backends implement
/// it: the embedded one (<c>ReplicatedClusterStore</c> over a Raft log, or over a single in-memory log in
/// tests) and, later, etcd itself — so its semantics are etcd v3's wherever this comment does not say otherwise.
/// <para>
/// Revisions: the store has one revision counter, starting at 1 for the empty store; every transaction that changes
/// anything advances it by one, and every key it writes gets that revision as its <see cref="KeyValue.ModRevision"/>
/// (a transaction's changes are one revision, as in etcd). A transaction that changes nothing (failed compares with
/// no failure writes, only reads) does not advance it.
/// </para>
/// <para>
/// Consistency: transactions are linearizable (applied in log order, compares evaluated at apply time). Reads
/// (<see cref="GetAsync"/>, <see cref="RangeAsync"/>) are served from the local replica's applied state and may lag
/// the leader; a reader that must see its own write reads at or after the revision the write returned — every call
/// that writes returns only once the local replica has applied it.
/// </para>
/// <para>
/// Errors: every member throws <see cref="StoreException"/> with a <see cref="StoreErrorCode"/> for the store's own
/// refusals (no quorum, compacted revision, unknown lease, value too large, store closed), never a transport's
/// exception type. Thread-safety: all members may be called concurrently.
/// </para>
/// </summary>
public interface IClusterStore : IAsyncDisposable
{
    /// <summary>Where the state lives, for messages ("raft:/var/lib/useroverlay/cluster", "memory").</summary>
    string Location { get; }

    /// <summary>The revision of the local replica's applied state.</summary>
    long Revision { get; }

    /// <summary>One key, or none; with the revision of the state it was read from.</summary>
    ValueTask<RangeResult> GetAsync(string key, CancellationToken cancellationToken = default);

    /// <summary>
    /// Every key starting with <paramref name="prefix"/> (all keys for ""), in ordinal key order; with
    /// <paramref name="limit"/> &gt; 0 at most that many (<see cref="RangeResult.More"/> says whether more exist).
    /// </summary>
    ValueTask<RangeResult> RangeAsync(string prefix, int limit = 0, CancellationToken cancellationToken = default);

    /// <summary>
    /// Runs <paramref name="request"/> atomically: if every compare holds, the success operations, else the failure
    /// operations. Puts with a lease attach the key to it (the lease must exist: <see cref="StoreErrorCode.LeaseNotFound"/>).
    /// </summary>
    ValueTask<TxnResult> TxnAsync(TxnRequest request, CancellationToken cancellationToken = default);

    /// <summary>
    /// The changes to keys under <paramref name="prefix"/> with revisions from <paramref name="fromRevision"/> on, in
    /// revision order (within a revision, in the order the transaction made them), then each new change as it is
    /// applied, until <paramref name="cancellationToken"/> is cancelled (the enumeration then ends without an
    /// exception). A watcher that lost its stream resumes with <c>fromRevision = last seen + 1</c> and sees every
    /// change exactly once. A <paramref name="fromRevision"/> older than the history kept throws
    /// <see cref="StoreErrorCode.Compacted"/> (whose <see cref="StoreException.CompactRevision"/> says the oldest one
    /// kept): read the prefix with <see cref="RangeAsync"/> and watch from its revision + 1. A slow consumer does not
    /// block writers; one that falls further behind than the history kept gets <see cref="StoreErrorCode.Compacted"/>.
    /// </summary>
    IAsyncEnumerable<WatchEvent> WatchAsync(string prefix, long fromRevision, CancellationToken cancellationToken = default);

    /// <summary>Grants a lease of <paramref name="ttl"/> (whole seconds, at least 1 s, as etcd).</summary>
    ValueTask<Lease> GrantLeaseAsync(TimeSpan ttl, CancellationToken cancellationToken = default);

    /// <summary>
    /// Renews a lease for its full TTL and returns that TTL; <see cref="StoreErrorCode.LeaseNotFound"/> when it has
    /// expired or was revoked. A lease expires when it has not been renewed for its TTL as the leader counts time;
    /// when leadership changes, every lease gets its full TTL again (etcd does the same).
    /// </summary>
    ValueTask<TimeSpan> KeepAliveAsync(long leaseId, CancellationToken cancellationToken = default);

    /// <summary>Revokes a lease, deleting its keys (one revision); revoking an unknown lease is not an error.</summary>
    ValueTask RevokeLeaseAsync(long leaseId, CancellationToken cancellationToken = default);
}

/// <summary>A stored key.</summary>
/// <param name="Key">The key.</param>
/// <param name="Value">The value (not to be modified).</param>
/// <param name="CreateRevision">The revision that created the key (since its last deletion).</param>
/// <param name="ModRevision">The revision that last wrote it.</param>
/// <param name="Version">How many times it was written since it was created (1 after creation).</param>
/// <param name="Lease">The lease it is attached to, 0 for none.</param>
public sealed record KeyValue(string Key, byte[] Value, long CreateRevision, long ModRevision, long Version, long Lease);

/// <summary>What a read returned.</summary>
/// <param name="Kvs">The keys, in ordinal order.</param>
/// <param name="Revision">The store's revision at the read.</param>
/// <param name="More">True when a limit cut the result short.</param>
public sealed record RangeResult(IReadOnlyList<KeyValue> Kvs, long Revision, bool More = false);

/// <summary>What a compare looks at.</summary>
public enum CompareTarget
{
    /// <summary><see cref="KeyValue.Version"/> (0 for a missing key).</summary>
    Version,
    /// <summary><see cref="KeyValue.CreateRevision"/> (0 for a missing key).</summary>
    CreateRevision,
    /// <summary><see cref="KeyValue.ModRevision"/> (0 for a missing key).</summary>
    ModRevision,
    /// <summary>The value, compared bytewise (a missing key compares as not equal to anything).</summary>
    Value,
    /// <summary><see cref="KeyValue.Lease"/> (0 for a missing key or none).</summary>
    Lease,
}

/// <summary>How a compare compares.</summary>
public enum CompareResult
{
    /// <summary>Target equals the operand.</summary>
    Equal,
    /// <summary>Target differs from the operand.</summary>
    NotEqual,
    /// <summary>Target is less than the operand.</summary>
    Less,
    /// <summary>Target is greater than the operand.</summary>
    Greater,
}

/// <summary>One condition of a transaction on one key.</summary>
/// <param name="Key">The key.</param>
/// <param name="Target">What is compared.</param>
/// <param name="Result">How.</param>
/// <param name="Number">The operand for the numeric targets.</param>
/// <param name="Value">The operand for <see cref="CompareTarget.Value"/>.</param>
public sealed record Compare(string Key, CompareTarget Target, CompareResult Result, long Number = 0, byte[]? Value = null)
{
    /// <summary>The key does not exist.</summary>
    public static Compare Missing(string key) => new(key, CompareTarget.Version, CompareResult.Equal, 0);

    /// <summary>The key exists.</summary>
    public static Compare Exists(string key) => new(key, CompareTarget.Version, CompareResult.Greater, 0);

    /// <summary>The key was last written at <paramref name="modRevision"/> (0: it does not exist).</summary>
    public static Compare ModifiedAt(string key, long modRevision) => new(key, CompareTarget.ModRevision, CompareResult.Equal, modRevision);
}

/// <summary>What an operation of a transaction does.</summary>
public enum OpKind
{
    /// <summary>Reads one key (<see cref="Op.Prefix"/> false) or a prefix.</summary>
    Range,
    /// <summary>Writes one key.</summary>
    Put,
    /// <summary>Deletes one key (<see cref="Op.Prefix"/> false) or every key under a prefix.</summary>
    Delete,
}

/// <summary>One operation of a transaction.</summary>
/// <param name="Kind">What it does.</param>
/// <param name="Key">The key, or the prefix when <paramref name="Prefix"/>.</param>
/// <param name="Value">The value to put.</param>
/// <param name="Lease">The lease to attach a put key to, 0 for none.</param>
/// <param name="Prefix">Range or delete every key starting with <paramref name="Key"/>.</param>
public sealed record Op(OpKind Kind, string Key, byte[]? Value = null, long Lease = 0, bool Prefix = false)
{
    /// <summary>Put <paramref name="key"/> = <paramref name="value"/>.</summary>
    public static Op Put(string key, byte[] value, long lease = 0) => new(OpKind.Put, key, value, lease);

    /// <summary>Delete <paramref name="key"/>.</summary>
    public static Op Delete(string key) => new(OpKind.Delete, key);

    /// <summary>Delete every key under <paramref name="prefix"/>.</summary>
    public static Op DeletePrefix(string prefix) => new(OpKind.Delete, prefix, Prefix: true);

    /// <summary>Read <paramref name="key"/>.</summary>
    public static Op Get(string key) => new(OpKind.Range, key);

    /// <summary>Read every key under <paramref name="prefix"/>.</summary>
    public static Op GetPrefix(string prefix) => new(OpKind.Range, prefix, Prefix: true);
}

/// <summary>A transaction: if all <paramref name="Compares"/> hold, <paramref name="Success"/>, else <paramref name="Failure"/>.</summary>
public sealed record TxnRequest(IReadOnlyList<Compare> Compares, IReadOnlyList<Op> Success, IReadOnlyList<Op>? Failure = null);

/// <summary>What one operation of a transaction returned.</summary>
/// <param name="Kvs">For a range: the keys read (the state before the transaction's later writes).</param>
/// <param name="Deleted">For a delete: how many keys it deleted.</param>
/// <param name="Previous">For a put: the key's previous value, if any.</param>
public sealed record OpResponse(IReadOnlyList<KeyValue> Kvs, long Deleted = 0, KeyValue? Previous = null);

/// <summary>What a transaction did.</summary>
/// <param name="Succeeded">Whether the compares held (and so which branch ran).</param>
/// <param name="Revision">The store's revision after it (its own revision when it wrote).</param>
/// <param name="Responses">One per operation of the branch that ran.</param>
public sealed record TxnResult(bool Succeeded, long Revision, IReadOnlyList<OpResponse> Responses);

/// <summary>A lease.</summary>
/// <param name="Id">Its id (never 0).</param>
/// <param name="Ttl">Its time to live.</param>
public sealed record Lease(long Id, TimeSpan Ttl);

/// <summary>What happened to a key.</summary>
public enum WatchEventType
{
    /// <summary>Created or written.</summary>
    Put,
    /// <summary>Deleted (by a delete, or its lease's end).</summary>
    Delete,
}

/// <summary>One change seen by a watch.</summary>
/// <param name="Type">Put or delete.</param>
/// <param name="Kv">The key after a put; for a delete, the key with an empty value and <see cref="KeyValue.ModRevision"/> = the deleting revision.</param>
/// <param name="PrevKv">The key before the change (null when it did not exist).</param>
public sealed record WatchEvent(WatchEventType Type, KeyValue Kv, KeyValue? PrevKv)
{
    /// <summary>The revision of the change.</summary>
    public long Revision => Kv.ModRevision;
}

/// <summary>Why the store refused.</summary>
public enum StoreErrorCode
{
    /// <summary>No leader or no quorum answered in time: retry later.</summary>
    Unavailable,
    /// <summary>A watch asked for a revision older than the history kept.</summary>
    Compacted,
    /// <summary>The lease does not exist (expired, revoked or never granted).</summary>
    LeaseNotFound,
    /// <summary>A key, value or transaction exceeds the limits (<see cref="StoreLimits"/>).</summary>
    TooLarge,
    /// <summary>The request is malformed (an empty key, a put without a value, a TTL under 1 s).</summary>
    InvalidArgument,
    /// <summary>The store has been disposed.</summary>
    Closed,
    /// <summary>A sealed value does not open with the seal key given (another cluster's key, or the value was altered).</summary>
    SealKey,
}

/// <summary>A refusal of the store.</summary>
public sealed class StoreException(StoreErrorCode code, string message, Exception? inner = null) : Exception(message, inner)
{
    /// <summary>Why.</summary>
    public StoreErrorCode Code { get; } = code;

    /// <summary>For <see cref="StoreErrorCode.Compacted"/>: the oldest revision a watch may start from.</summary>
    public long CompactRevision { get; init; }
}

/// <summary>The limits every backend enforces (etcd's defaults where it has them).</summary>
public static class StoreLimits
{
    /// <summary>Longest key, in UTF-8 bytes.</summary>
    public const int MaxKeyBytes = 4096;

    /// <summary>Largest transaction (keys and values of its operations together), in bytes: etcd's default request limit.</summary>
    public const int MaxTxnBytes = 1536 * 1024;

    /// <summary>Most operations in one transaction branch, and most compares (etcd's --max-txn-ops default).</summary>
    public const int MaxTxnOps = 128;
}
