namespace UserOverlay.Membership;

// The embedder's hooks, split as memberlist splits them: each interface is optional and small.
// Thread contracts are part of each member's documentation; "borrowed" means the span is only
// valid during the call (copy it to keep it).

/// <summary>Node meta and user messages (memberlist's Delegate: NodeMeta, NotifyMsg).</summary>
public interface IMembershipDelegate
{
    /// <summary>
    /// Writes this node's meta into <paramref name="destination"/> (512 bytes, memberlist's
    /// MetaMaxSize) and returns the length written. Called at start and on
    /// <see cref="Memberlist.UpdateNodeMetaAsync"/>, on the caller's thread. Must not block.
    /// </summary>
    int WriteNodeMeta(Span<byte> destination);

    /// <summary>
    /// A user message arrived (UDP gossip, <see cref="Memberlist.SendBestEffortAsync"/>, or TCP
    /// <see cref="Memberlist.SendReliableAsync"/>). Borrowed: <paramref name="message"/> is valid only
    /// during the call. Called on the member's single handoff task, never concurrently with itself;
    /// must not block for long (it delays the handling of gossip).
    /// </summary>
    void OnUserMessage(ReadOnlySpan<byte> message);
}

/// <summary>Membership changes (memberlist's EventDelegate).</summary>
public interface IMembershipEvents
{
    /// <summary>A member became alive (first seen, or back from dead/left). Including the local node at start.</summary>
    void OnJoin(MemberInfo member);

    /// <summary>A member was declared dead or left.</summary>
    void OnLeave(MemberInfo member);

    /// <summary>A live member's meta changed.</summary>
    void OnUpdate(MemberInfo member);
}

/// <summary>
/// State exchanged by TCP push/pull: at join and every PushPullInterval (memberlist's
/// LocalState/MergeRemoteState). Carries the embedder's replicated state (the endpoint table).
/// </summary>
public interface IStateDelegate
{
    /// <summary>
    /// Returns the local state to send (may be empty). <paramref name="join"/> is true during a join.
    /// Called concurrently from push/pull initiators and responders: must be thread-safe; may block briefly.
    /// </summary>
    byte[] GetLocalState(bool join);

    /// <summary>
    /// Merges a remote state. Borrowed: <paramref name="state"/> is valid only during the call.
    /// Called concurrently (see <see cref="GetLocalState"/>): must be thread-safe. Called after the
    /// remote node list has been merged, so members it mentions are already known.
    /// </summary>
    void MergeRemoteState(ReadOnlySpan<byte> state, bool join);
}

/// <summary>
/// The embedder's gossip broadcasts, piggybacked on memberlist's own (memberlist's GetBroadcasts).
/// <see cref="TransmitLimitedQueue"/> implements the usual policy.
/// </summary>
public interface IBroadcastSource
{
    /// <summary>
    /// Returns messages to piggyback, each at most <paramref name="limit"/> − <paramref name="overhead"/>
    /// bytes and all together at most <paramref name="limit"/> counting <paramref name="overhead"/> per
    /// message. Called concurrently from the gossip loop and from every send path: must be
    /// thread-safe and must not block.
    /// </summary>
    IReadOnlyList<byte[]> GetBroadcasts(int overhead, int limit);
}

/// <summary>Optional ping hooks (memberlist's PingDelegate): ack payloads and RTT observations.</summary>
public interface IPingDelegate
{
    /// <summary>Payload to put in our acks (serf: its Vivaldi coordinate). Called on the receive task; must not block.</summary>
    byte[]? AckPayload();

    /// <summary>A probe of <paramref name="member"/> completed after <paramref name="rtt"/>. Borrowed payload. Called on the probe task; must not block.</summary>
    void OnPingComplete(MemberInfo member, TimeSpan rtt, ReadOnlySpan<byte> payload);
}
