using System.Net;

namespace UserOverlay.Membership.Table;

/// <summary>A host that participates in a network: where to replicate broadcast and unknown traffic (the flood list).</summary>
/// <param name="NodeName">Its memberlist name.</param>
/// <param name="GossipAddress">Its gossip address.</param>
/// <param name="Vtep">Its VTEP address (from its node meta).</param>
/// <param name="DataPort">Its VXLAN data port (from its node meta).</param>
public sealed record NetworkPeer(string NodeName, IPAddress GossipAddress, IPAddress Vtep, int DataPort);
