namespace UserOverlay.Router;

/// <summary>
/// The seam for services that live at a network's gateway address (a DNS responder, later): the router answers ARP and
/// ICMP echo for the gateway itself, and hands every other frame a local endpoint sends to the gateway's MAC here
/// (<see cref="OverlayRouter.GatewayHandler"/>). Frames from other hosts never reach it: each host serves its own gateway.
/// <para>
/// Contract: called on a pipeline worker, for each such frame, by several workers at once (one per queue). It must
/// not block, should not allocate (it runs on the data path), and should not throw (a throw is counted as an internal
/// error and the frame dropped). Both spans are borrowed for the call only.
/// </para>
/// </summary>
public interface IGatewayHandler
{
    /// <summary>
    /// Handles one Ethernet frame a local endpoint of <paramref name="network"/> addressed to the gateway's MAC (for
    /// example a UDP datagram to the gateway address, port 53). To answer, write a whole Ethernet frame into
    /// <paramref name="reply"/> (room for the network's MTU plus the Ethernet header) and return its length: the router
    /// writes it to the endpoint's TAP at once. Return 0 when the frame is taken without a reply, and -1 when it is not
    /// the handler's (the router drops it and counts <see cref="DropReason.GatewayUnhandled"/>).
    /// </summary>
    int OnFrame(GatewayNetwork network, ReadOnlySpan<byte> frame, Span<byte> reply);
}

/// <summary>A network's gateway, as an <see cref="IGatewayHandler"/> sees it. One instance per network (the data path never allocates it).</summary>
/// <param name="Network">The network's name.</param>
/// <param name="Vni">Its VNI.</param>
/// <param name="Address">The gateway address (host order).</param>
/// <param name="Mac">The gateway MAC (<see cref="Constants.GatewayMac"/>): a reply's source MAC.</param>
/// <param name="Mtu">The network's inner MTU: a reply's IP packet must fit it.</param>
public sealed record GatewayNetwork(string Network, uint Vni, uint Address, MacAddress Mac, int Mtu);
