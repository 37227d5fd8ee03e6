namespace UserOverlay.Router;

/// <summary>
/// How a control plane that knows where endpoints live (the gossip-replicated endpoint table, or
/// anything else) feeds the router — an interface the router owns, so the router never references
/// the membership library. Entries set here have source "gossip": they are never aged and never
/// overridden by data-plane learning. Every method is thread-safe and may be called at any time
/// while the router runs; changes reach the data path with the next frame (copy-on-write tables).
/// </summary>
public interface IRemoteEndpointSink
{
    /// <summary>
    /// <paramref name="mac"/> on network <paramref name="network"/> lives behind <paramref name="vtep"/>;
    /// with an <paramref name="address"/>, ARP for it is answered locally. Returns false when this
    /// host has no such network (nothing to do).
    /// </summary>
    bool SetRemoteEndpoint(string network, MacAddress mac, uint? address, VtepEndpoint vtep);

    /// <summary>Forgets a remote endpoint (its FDB entry and its neighbour entry). Returns false when unknown.</summary>
    bool RemoveRemoteEndpoint(string network, MacAddress mac, uint? address);

    /// <summary>
    /// The VTEPs that get this network's broadcast and unknown unicast (hosts that have endpoints on
    /// it). Replaces the previous list. Returns false when this host has no such network.
    /// </summary>
    bool SetFloodList(string network, IReadOnlyCollection<VtepEndpoint> vteps);

    /// <summary>
    /// The VTEPs VXLAN is accepted from, besides the configured <see cref="RouterOptions.Peers"/>
    /// (which always stay). Replaces the previous dynamic set.
    /// </summary>
    void SetDynamicPeers(IReadOnlyCollection<VtepEndpoint> peers);
}
