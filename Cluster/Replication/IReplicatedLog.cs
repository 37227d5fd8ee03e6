namespace UserOverlay.Cluster.Replication;

/// <summary>
/// An ordered, replicated log of opaque commands, applied in the same order to a state machine on every member:
/// the seam between the store (<c>ReplicatedClusterStore</c>, which gives commands their meaning) and the
/// consensus that orders them (<c>RaftLog</c> over DotNext's Raft among the managers, or
/// <c>LocalLog</c>: one member in memory, for tests and embedders).
/// <para>
/// Contract: <see cref="ProposeAsync"/> may be called on any member; a follower forwards the command to the leader. It
/// returns once the command is committed and the local state machine has applied it (so the caller reads its own
/// write), and throws <see cref="Store.StoreException"/> with <see cref="Store.StoreErrorCode.Unavailable"/> when no
/// leader accepts it within the log's timeout — the command may or may not be applied later, so commands carry their
/// own request id and the state machine makes a repeated one harmless. <see cref="IReplicatedStateMachine.Apply"/> is
/// called from one thread at a time, in log order, exactly once per committed entry per member (after a restart the
/// machine is rebuilt from the last snapshot and the entries after it).
/// </para>
/// </summary>
public interface IReplicatedLog : IAsyncDisposable
{
    /// <summary>Where the log lives, for messages ("raft:/var/lib/useroverlay/cluster", "memory").</summary>
    string Location { get; }

    /// <summary>Starts the member: loads the snapshot and the entries after it into <paramref name="machine"/>, joins the consensus.</summary>
    ValueTask StartAsync(IReplicatedStateMachine machine, CancellationToken cancellationToken = default);

    /// <summary>Appends <paramref name="command"/> through the leader and waits until the local machine has applied it.</summary>
    ValueTask ProposeAsync(ReadOnlyMemory<byte> command, CancellationToken cancellationToken = default);

    /// <summary>Whether this member is the leader now.</summary>
    bool IsLeader { get; }

    /// <summary>The leader's address as members know it (null when there is none).</summary>
    string? Leader { get; }

    /// <summary>Raised (on any thread) when this member becomes leader (true) or stops being it (false).</summary>
    event Action<bool>? LeadershipChanged;
}

/// <summary>The deterministic state machine a <see cref="IReplicatedLog"/> feeds.</summary>
public interface IReplicatedStateMachine
{
    /// <summary>Applies one committed command; must be deterministic (no clock, no randomness, no I/O) and must not throw for a malformed command (record it as failed instead).</summary>
    void Apply(long index, ReadOnlySpan<byte> command);

    /// <summary>Writes the whole state (as of the last applied index) for a snapshot.</summary>
    void WriteSnapshot(Stream destination);

    /// <summary>Replaces the whole state with a snapshot <see cref="WriteSnapshot"/> wrote.</summary>
    void ReadSnapshot(Stream source);
}
