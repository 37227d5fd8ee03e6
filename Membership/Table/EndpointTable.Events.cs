// Flood lists and the observer: changes are computed under the table's lock and delivered by one event task.

using System.Threading.Channels;
using Microsoft.Extensions.Logging;

namespace UserOverlay.Membership.Table;

public sealed partial class EndpointTable
{
    private readonly Channel<Action> _events = Channel.CreateUnbounded<Action>(new UnboundedChannelOptions { SingleReader = true });

    private List<NetworkPeer> ComputePeersLocked(string net)
    {
        var peers = new List<NetworkPeer>();
        foreach (var ((node, n), (att, _)) in _attachments)
        {
            if (n != net || att.Left || node == NodeName) continue;
            var m = _ml.GetMember(node);
            if (m is null || m.State is not (MemberState.Alive or MemberState.Suspect)) continue;
            if (!OverlayNodeMeta.TryParse(m.Meta.Span, out var meta)) continue;
            peers.Add(new NetworkPeer(node, m.Address, meta!.VtepAddress, meta.DataPort));
        }
        peers.Sort((a, b) => string.CompareOrdinal(a.NodeName, b.NodeName));
        return peers;
    }

    private void RecomputePeersLocked(string net)
    {
        var peers = ComputePeersLocked(net);
        _networkSizes[net] = peers.Count + 1;
        if (_lastPeers.TryGetValue(net, out var last) && last.SequenceEqual(peers)) return;
        _lastPeers[net] = peers;
        Emit(net, peers);
    }

    private void Emit(EndpointChange c)
    {
        if (_opt.Observer is { } o) _events.Writer.TryWrite(() => o.OnEndpointChanged(c));
    }

    private void Emit(string net, IReadOnlyList<NetworkPeer> peers)
    {
        if (_opt.Observer is { } o) _events.Writer.TryWrite(() => o.OnNetworkPeersChanged(net, peers));
    }

    private async Task EventLoopAsync()
    {
        await foreach (var a in _events.Reader.ReadAllAsync().ConfigureAwait(false))
        {
            try { a(); }
            catch (Exception e) { _log?.LogError(e, "endpoint table observer threw"); }
        }
    }
}
