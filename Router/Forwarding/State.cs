namespace UserOverlay.Router.Forwarding;

/// <summary>Where an FDB or neighbour entry came from.</summary>
public enum EntrySource
{
    /// <summary>A local endpoint of this host (from configuration or learned from its TAP).</summary>
    Local,
    /// <summary>Configured statically.</summary>
    Static,
    /// <summary>Learned from the data path; ages out.</summary>
    Learned,
    /// <summary>Learned from the cluster's gossip.</summary>
    Gossip,
}

/// <summary>
/// An FDB entry: a MAC on one network is behind a local port or a remote VTEP. Immutable except
/// <see cref="LastSeen"/>, which readers refresh in place (benign race: any recent stamp will do).
/// </summary>
internal sealed class FdbEntry(ulong mac, EntrySource source, LocalPort? port, VtepEndpoint remote, long now)
{
    public readonly ulong Mac = mac;
    public readonly EntrySource Source = source;
    /// <summary>The local port, or null for a remote entry.</summary>
    public readonly LocalPort? Port = port;
    /// <summary>The remote VTEP (meaningful when <see cref="Port"/> is null).</summary>
    public readonly VtepEndpoint Remote = remote;
    /// <summary>Environment.TickCount64 of the last frame that confirmed the entry.</summary>
    public long LastSeen = now;

    /// <summary>Learned entries (local or remote) age out; configured ones do not.</summary>
    public bool Ages => Source == EntrySource.Learned;
}

/// <summary>A neighbour (IPv4 → MAC) entry used to answer ARP locally.</summary>
internal sealed class NeighborEntry(uint ip, ulong mac, EntrySource source, long now)
{
    public readonly uint Ip = ip;
    public readonly ulong Mac = mac;
    public readonly EntrySource Source = source;
    public long LastSeen = now;
}

/// <summary>
/// A local endpoint's port on a network: its TAP device and identity. Created when the endpoint
/// is attached; immutable afterwards.
/// </summary>
internal sealed class LocalPort(int id, NetworkState network, EndpointOptions options, ITapDevice tap)
{
    public readonly int Id = id;
    public readonly NetworkState Network = network;
    public readonly EndpointOptions Options = options;
    public readonly ulong Mac = options.EffectiveMac.Value;
    public readonly uint Address = options.Address;
    public readonly ITapDevice Tap = tap;
}

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
