namespace UserOverlay.Router.Forwarding;

/// <summary>
/// The router's shared forwarding state: networks by VNI, peers by address, ports by id, and
/// the router-wide counters. Read by every pipeline worker on every packet through immutable
/// snapshots; written by the control side (start, aging, later gossip) and by learning.
/// </summary>
internal sealed class ForwardingState
{
    public ForwardingState(int workers, bool learning, TimeSpan aging)
    {
        Workers = workers;
        Learning = learning;
        AgingMilliseconds = (long)aging.TotalMilliseconds;
        Global = new TrafficCounters[workers];
        for (int i = 0; i < workers; i++) Global[i] = new TrafficCounters();
    }

    /// <summary>The ESP security associations of the encrypted networks, or null when the host has none.</summary>
    public UserOverlay.Crypto.EspSecurityDatabase? Esp;

    /// <summary>Where ESP goes: port 0 for transport mode on IP protocol 50, or the ESP-in-UDP port.</summary>
    public ushort EspPort;

    /// <summary>This host's data port (the UDP destination port VXLAN carries inside ESP, and the port peers listen on).</summary>
    public ushort DataPort;

    /// <summary>Number of pipeline workers (size of every per-worker counter array).</summary>
    public readonly int Workers;
    public readonly bool Learning;
    public readonly long AgingMilliseconds;
    /// <summary>Networks keyed by VNI.</summary>
    public readonly CopyOnWriteTable<NetworkState> Networks = new();
    /// <summary>Peers keyed by IPv4 address (host order).</summary>
    public readonly CopyOnWriteTable<PeerState> Peers = new();
    /// <summary>Router-wide counters for traffic that has no network (unknown source or VNI…), per worker.</summary>
    public readonly TrafficCounters[] Global;
    private volatile LocalPort?[] _ports = [];
    private readonly Lock _portLock = new();

    /// <summary>Port by id, or null.</summary>
    public LocalPort? Port(int id)
    {
        var ports = _ports;
        return (uint)id < (uint)ports.Length ? ports[id] : null;
    }

    /// <summary>All ports.</summary>
    public IEnumerable<LocalPort> AllPorts => _ports.Where(p => p is not null)!;

    /// <summary>Registers a port under its id and on its network, with its FDB and neighbour entries.</summary>
    public void AddPort(LocalPort port, long now)
    {
        lock (_portLock)
        {
            var ports = _ports;
            if (port.Id >= ports.Length) Array.Resize(ref ports, Math.Max(port.Id + 1, ports.Length * 2));
            else ports = (LocalPort?[])ports.Clone();
            ports[port.Id] = port;
            _ports = ports;
            var net = port.Network;
            net.Ports = [.. net.Ports, port];
        }
        port.Network.Fdb.Set(port.Mac, new FdbEntry(port.Mac, EntrySource.Local, port, default, now));
        port.Network.Neighbors.Set(port.Address, new NeighborEntry(port.Address, port.Mac, EntrySource.Local, now));
    }

    /// <summary>
    /// Removes learned FDB and neighbour entries older than the aging time. Called periodically
    /// by the router's housekeeping timer, never by the data path.
    /// </summary>
    public int Sweep(long now)
    {
        int removed = 0;
        foreach (var kv in Networks.ToList())
        {
            var net = kv.Value;
            removed += net.Fdb.RemoveWhere((_, e) => e.Ages && now - Volatile.Read(ref e.LastSeen) > AgingMilliseconds);
            net.Neighbors.RemoveWhere((_, n) => n.Source == EntrySource.Learned && now - Volatile.Read(ref n.LastSeen) > AgingMilliseconds);
            Volatile.Write(ref net.LearnedCount, net.Fdb.ToList().Count(e => e.Value.Ages));
        }
        return removed;
    }
}
