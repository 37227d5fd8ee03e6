namespace UserOverlay.Membership.Table;

/// <summary>
/// Receives the replicated table's changes, to turn into FDB entries, proxy-ARP entries and a
/// per-network flood list. Called on one dedicated event task, in order, never concurrently and
/// never under the table's lock; a slow observer delays later events only (not gossip).
/// </summary>
public interface IEndpointTableObserver
{
    /// <summary>A remote endpoint in a network this node has joined was added, updated or removed.</summary>
    void OnEndpointChanged(EndpointChange change);

    /// <summary>The set of other live hosts in <paramref name="networkId"/> changed; <paramref name="peers"/> is the complete new set (sorted by name).</summary>
    void OnNetworkPeersChanged(string networkId, IReadOnlyList<NetworkPeer> peers);
}
