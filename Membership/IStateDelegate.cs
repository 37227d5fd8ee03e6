namespace UserOverlay.Membership;

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
