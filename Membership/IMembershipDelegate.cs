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
