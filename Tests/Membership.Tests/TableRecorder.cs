using System.Collections.Concurrent;
using UserOverlay.Membership.Table;

namespace UserOverlay.Membership.Tests;

/// <summary>Records table events, as a router's FDB adapter would consume them.</summary>
public sealed class TableRecorder : IEndpointTableObserver
{
    public readonly ConcurrentQueue<EndpointChange> Changes = new();
    public readonly ConcurrentDictionary<string, IReadOnlyList<NetworkPeer>> Peers = new();
    /// <summary>An FDB built only from the events: (network, MAC) → record.</summary>
    public readonly ConcurrentDictionary<(string, ulong), EndpointRecord> Fdb = new();

    public void OnEndpointChanged(EndpointChange change)
    {
        Changes.Enqueue(change);
        var key = (change.Record.NetworkId, change.Record.Mac);
        if (change.Kind == EndpointChangeKind.Removed) Fdb.TryRemove(key, out _);
        else Fdb[key] = change.Record;
    }

    public void OnNetworkPeersChanged(string networkId, IReadOnlyList<NetworkPeer> peers) => Peers[networkId] = peers;

    public IReadOnlyList<string> PeerNames(string net) => Peers.TryGetValue(net, out var p) ? p.Select(x => x.NodeName).ToList() : [];
}
