namespace UserOverlay.Membership.Table;

public sealed partial class EndpointTable
{
    /// <summary>The table's view of memberlist's delegates; forwards events and foreign user messages to the embedder's.</summary>
    private sealed class Hooks(EndpointTable t, IMembershipEvents? events, IMembershipDelegate? inner) : IMembershipDelegate, IMembershipEvents, IStateDelegate, IBroadcastSource
    {
        public int WriteNodeMeta(Span<byte> destination)
        {
            t._meta.CopyTo(destination);
            return t._meta.Length;
        }

        public void OnUserMessage(ReadOnlySpan<byte> message)
        {
            if (message.Length > 0 && message[0] == TableCodec.Magic) t.OnUserMessage(message);
            else inner?.OnUserMessage(message);
        }

        public void OnJoin(MemberInfo member) { t.OnMemberJoinedOrUpdated(member); events?.OnJoin(member); }
        public void OnLeave(MemberInfo member) { t.OnMemberLeft(member); events?.OnLeave(member); }
        public void OnUpdate(MemberInfo member) { t.OnMemberJoinedOrUpdated(member); events?.OnUpdate(member); }

        public byte[] GetLocalState(bool join) => t.GetLocalState();
        public void MergeRemoteState(ReadOnlySpan<byte> state, bool join) => t.MergeRemoteState(state);

        public IReadOnlyList<byte[]> GetBroadcasts(int overhead, int limit)
        {
            // Node-level table events (network attachments) ride on memberlist's gossip, one batch per call.
            var msgs = t._nodeQueue.GetBroadcasts(0, limit - overhead - TableCodec.BatchOverhead);
            return msgs.Count == 0 ? [] : [TableCodec.EncodeBatch(msgs)];
        }
    }
}
