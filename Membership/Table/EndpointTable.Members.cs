// Reacting to members: a failed or departed member's state is dropped, a returning one is resynced.

namespace UserOverlay.Membership.Table;

public sealed partial class EndpointTable
{
    private void OnMemberLeft(MemberInfo m)
    {
        if (m.Name == NodeName) return;
        lock (_lock)
        {
            _purged.Add(m.Name);
            _synced.Remove(m.Name);
            foreach (var key in _endpoints.Where(e => e.Value.Record.OwnerNode == m.Name).Select(e => e.Key).ToList())
            {
                var rec = _endpoints[key].Record;
                _endpoints.Remove(key);
                if (!rec.Deleted && _joined.Contains(rec.NetworkId)) Emit(new EndpointChange(EndpointChangeKind.Removed, rec, null));
            }
            foreach (var key in _attachments.Keys.Where(k => k.Node == m.Name).ToList()) _attachments.Remove(key);
            foreach (var net in _joined) RecomputePeersLocked(net);
        }
    }

    private void OnMemberJoinedOrUpdated(MemberInfo m)
    {
        if (m.Name == NodeName) return;
        bool resync;
        lock (_lock)
        {
            resync = _purged.Remove(m.Name);
            if (_pending.Remove(m.Name, out var held) && IsLive(m.Name))
            {
                foreach (var e in held.Items) ApplyEvent(e, fromGossip: true);
            }
            foreach (var net in _joined) RecomputePeersLocked(net);
        }
        if (resync)
        {
            // It came back: we dropped its state while it was gone, so fetch it (and give it ours).
            _ = Task.Run(async () =>
            {
                try { await _ml.PushPullAsync(m.EndPoint, _stop.Token).ConfigureAwait(false); }
                catch (Exception) { /* anti-entropy will retry */ }
            });
        }
    }
}
