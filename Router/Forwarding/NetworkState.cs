namespace UserOverlay.Router.Forwarding;

/// <summary>
/// One overlay network on this host: its FDB, neighbour table, local ports, flood list and
/// counters. Tables are copy-on-write snapshots; port and flood arrays are replaced whole.
/// </summary>
internal sealed class NetworkState
{
    public NetworkState(NetworkOptions options, int mtu, int workers)
    {
        Options = options;
        Vni = options.Vni;
        Mtu = mtu;
        Encrypted = options.Encrypted;
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
    public readonly CopyOnWriteTable<UserOverlay.Crypto.EspPeer> EspPeers = new();
    /// <summary>Largest inner frame accepted: MTU + Ethernet header + one VLAN tag.</summary>
    public readonly int MaxFrameLength;
    public readonly CopyOnWriteTable<FdbEntry> Fdb = new();
    public readonly CopyOnWriteTable<NeighborEntry> Neighbors = new();
    /// <summary>Local ports on this network (replaced whole when ports change).</summary>
    public volatile LocalPort[] Ports = [];
    /// <summary>VTEPs that get this network's broadcast and unknown unicast (head-end replication).</summary>
    public volatile VtepEndpoint[] FloodList = [];
    /// <summary>Counters, one instance per pipeline worker (index = worker id).</summary>
    public readonly TrafficCounters[] Counters;
    /// <summary>Learned entries currently in the FDB (bounded by <see cref="Constants.MaxLearnedEntriesPerNetwork"/>).</summary>
    public int LearnedCount;
}
