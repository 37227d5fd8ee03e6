namespace UserOverlay.Router.Forwarding;

/// <summary>
/// One overlay network on this host: its FDB, neighbour table, local ports, flood list and
/// counters. Tables are <see cref="ForwardingTable{T}"/>s (lock-free reads, in-place writes); the flood array is replaced whole, the ports are a <see cref="PortList"/>.
/// </summary>
internal sealed class NetworkState
{
    public NetworkState(NetworkOptions options, int mtu, int workers)
    {
        Options = options;
        Vni = options.Vni;
        Mtu = mtu;
        Encrypted = options.Encrypted;
        if (options.Gateway is uint gw)
        {
            Gateway = gw;
            GatewayMac = Constants.GatewayMac(options.Vni).Value;
            GatewayInfo = new GatewayNetwork(options.Name, options.Vni, gw, new MacAddress(GatewayMac), mtu);
        }
        MaxFrameLength = mtu + Constants.EthernetHeaderLength + Constants.VlanTagLength;
        Counters = new TrafficCounters[workers];
        for (int i = 0; i < workers; i++) Counters[i] = new TrafficCounters();
    }

    public readonly NetworkOptions Options;
    public readonly uint Vni;
    /// <summary>Inner MTU in effect (configured or derived).</summary>
    public readonly int Mtu;
    /// <summary>Carried only as ESP; plain VXLAN for this VNI is dropped.</summary>
    public readonly bool Encrypted;
    /// <summary>For an encrypted network: the ESP peer (outbound SA handle) of each VTEP, keyed by VTEP address.</summary>
    public readonly ForwardingTable<UserOverlay.Crypto.EspPeer> EspPeers = new();
    /// <summary>Largest inner frame accepted: MTU + Ethernet header + one VLAN tag.</summary>
    public readonly int MaxFrameLength;
    public readonly ForwardingTable<FdbEntry> Fdb = new();
    public readonly ForwardingTable<NeighborEntry> Neighbors = new();
    /// <summary>Local ports on this network (amortized O(1) to change; see <see cref="PortList"/>).</summary>
    public readonly PortList Ports = new();
    /// <summary>The gateway address (host order) when <see cref="GatewayMac"/> is not 0.</summary>
    public readonly uint Gateway;
    /// <summary>The gateway's MAC (<see cref="Constants.GatewayMac"/>), or 0 when the network has no gateway.</summary>
    public readonly ulong GatewayMac;
    /// <summary>What an <see cref="IGatewayHandler"/> is told about this network (null without a gateway); made once, so the data path never allocates it.</summary>
    public readonly GatewayNetwork? GatewayInfo;
    /// <summary>VTEPs that get this network's broadcast and unknown unicast (head-end replication).</summary>
    public volatile VtepEndpoint[] FloodList = [];
    /// <summary>
    /// The captures of this network's inner frames, or null when none runs (the usual case: the data path's whole cost of
    /// capturing is this one volatile read per frame). Replaced whole by <see cref="OverlayRouter.StartCapture"/> and
    /// <see cref="OverlayRouter.StopCapture"/>.
    /// </summary>
    public volatile Capture.CaptureSession[]? Captures;
    /// <summary>Counters, one instance per pipeline worker (index = worker id).</summary>
    public readonly TrafficCounters[] Counters;
    /// <summary>Learned entries currently in the FDB (bounded by <see cref="Constants.MaxLearnedEntriesPerNetwork"/>).</summary>
    public int LearnedCount;
    /// <summary>Learned entries the housekeeping sweep removed because their VTEP went silent while they were sent to (<see cref="ForwardingState.Sweep"/>).</summary>
    public long UnansweredRemoved;
}
