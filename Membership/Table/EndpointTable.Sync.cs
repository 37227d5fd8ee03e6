// Push/pull: the whole table as memberlist's user state, and direct exchanges with new network peers.

using UserOverlay.Membership.Wire;

namespace UserOverlay.Membership.Table;

public sealed partial class EndpointTable
{
    /// <summary>Direct push/pulls running at once (a join storm must not open hundreds of streams).</summary>
    private readonly SemaphoreSlim _syncSlots = new(4);

    private byte[] GetLocalState()
    {
        lock (_lock)
        {
            var atts = _attachments.Values.Select(a => a.Att).ToList();
            var eps = _endpoints.Values.Select(e => e.Record).ToList();
            return TableCodec.EncodeState(atts, eps);
        }
    }

    private void MergeRemoteState(ReadOnlySpan<byte> state)
    {
        if (state.Length < 1 || state[0] != TableCodec.Magic) return;
        List<NetworkAttachment> atts;
        List<EndpointRecord> eps;
        try { (atts, eps) = TableCodec.DecodeState(state[1..]); }
        catch (MsgPackException) { Interlocked.Increment(ref _malformed); return; }
        lock (_lock)
        {
            foreach (var a in atts) ApplyAttachment(a, fromGossip: false);
            foreach (var e in eps) ApplyEndpoint(e, fromGossip: false);
        }
    }

    private async Task SyncWithAsync(string node)
    {
        try
        {
            await _syncSlots.WaitAsync(_stop.Token).ConfigureAwait(false);
            try
            {
                if (_ml.GetMember(node) is { } member)
                    await _ml.PushPullAsync(member.EndPoint, _stop.Token).ConfigureAwait(false);
            }
            finally { _syncSlots.Release(); }
        }
        catch (Exception) { /* periodic push/pull repairs */ }
    }

    /// <summary>A push/pull with one peer of the network, so a host that just joined it learns its records at once.</summary>
    private async Task SyncNetworkAsync(string net)
    {
        var peers = GetNetworkPeers(net);
        if (peers.Count == 0) return;
        var p = peers[Random.Shared.Next(peers.Count)];
        var member = _ml.GetMember(p.NodeName);
        if (member is null) return;
        try { await _ml.PushPullAsync(member.EndPoint, _stop.Token).ConfigureAwait(false); }
        catch (Exception) { /* periodic push/pull repairs */ }
    }
}
