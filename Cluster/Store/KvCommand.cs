namespace UserOverlay.Cluster.Store;

/// <summary>
/// A command of the embedded store, as it travels through the replicated log: a transaction or a lease operation,
/// with the request id its proposer chose (so a command proposed twice, after a lost answer, is applied once).
/// Encoded by <see cref="KvCommandCodec"/>.
/// </summary>
/// <param name="RequestId">The proposer's id for this request (16 bytes; a retry reuses it).</param>
internal abstract record KvCommand(Guid RequestId);

/// <summary>Runs a transaction.</summary>
/// <param name="RequestId">The proposer's request id.</param>
/// <param name="Request">The transaction.</param>
internal sealed record TxnCommand(Guid RequestId, TxnRequest Request) : KvCommand(RequestId);

/// <summary>Grants a lease; its id is the log index of this command.</summary>
/// <param name="RequestId">The proposer's request id.</param>
/// <param name="TtlSeconds">Its time to live, in whole seconds (at least 1).</param>
internal sealed record LeaseGrantCommand(Guid RequestId, long TtlSeconds) : KvCommand(RequestId);

/// <summary>Renews a lease (the leader restarts its countdown when it applies this).</summary>
/// <param name="RequestId">The proposer's request id.</param>
/// <param name="LeaseId">The lease.</param>
internal sealed record LeaseKeepAliveCommand(Guid RequestId, long LeaseId) : KvCommand(RequestId);

/// <summary>Revokes a lease and deletes its keys in one revision.</summary>
/// <param name="RequestId">The proposer's request id.</param>
/// <param name="LeaseId">The lease.</param>
internal sealed record LeaseRevokeCommand(Guid RequestId, long LeaseId) : KvCommand(RequestId);

/// <summary>
/// What applying a command produced, handed to the proposer by request id (and kept in the state machine's
/// de-duplication table, so a repeated request gets the same answer): exactly one of an error, a transaction's
/// result, a granted lease or a renewed TTL.
/// </summary>
/// <param name="Error">The refusal's code, or null when the command was applied.</param>
/// <param name="Message">The refusal's message.</param>
/// <param name="Txn">For a transaction: its result.</param>
/// <param name="Lease">For a grant: the lease.</param>
/// <param name="TtlSeconds">For a keep-alive: the lease's TTL.</param>
internal sealed record KvResult(StoreErrorCode? Error = null, string? Message = null, TxnResult? Txn = null, Lease? Lease = null, long TtlSeconds = 0)
{
    /// <summary>A refusal.</summary>
    public static KvResult Failed(StoreErrorCode code, string message) => new(code, message);

    /// <summary>Throws the refusal as a <see cref="StoreException"/>, if this is one.</summary>
    public KvResult ThrowIfFailed() => Error is { } code ? throw new StoreException(code, Message ?? code.ToString()) : this;
}
