namespace UserOverlay.Router.Forwarding;

/// <summary>
/// The router's shared forwarding state: networks by VNI, peers by address, ports by id, and
/// the router-wide counters. Read by every pipeline worker on every packet without locks (see
/// <see cref="ForwardingTable{T}"/> and <see cref="PortList"/>); written by the control side (start, run-time attach, aging,
/// gossip) and by learning.
/// </summary>
internal sealed class ForwardingState
{
    public ForwardingState(int workers, bool learning, TimeSpan aging, TimeSpan unanswered = default)
    {
        Workers = workers;
        Learning = learning;
        AgingMilliseconds = (long)aging.TotalMilliseconds;
        UnansweredMilliseconds = (long)unanswered.TotalMilliseconds;
        Global = new TrafficCounters[workers];
        for (int i = 0; i < workers; i++) Global[i] = new TrafficCounters();
    }

    /// <summary>The ESP security associations of the encrypted networks, or null when the host has none.</summary>
    public UserOverlay.Crypto.EspSecurityDatabase? Esp;

    /// <summary>Where ESP goes: port 0 for transport mode on IP protocol 50, or the ESP-in-UDP port.</summary>
    public ushort EspPort;

    /// <summary>This host's underlay address (host order), for the IPv4 headers of underlay captures.</summary>
    public uint UnderlayAddress;

    /// <summary>The captures of the outer datagrams, or null when none runs (one volatile read per datagram).</summary>
    public volatile Capture.CaptureSession[]? UnderlayCaptures;

    /// <summary>This host's data port (the UDP destination port VXLAN carries inside ESP, and the port peers listen on).</summary>
    public ushort DataPort;

    /// <summary>Number of pipeline workers (size of every per-worker counter array).</summary>
    public readonly int Workers;
    public readonly bool Learning;
    public readonly long AgingMilliseconds;
    /// <summary><see cref="RouterOptions.UnansweredAging"/> in milliseconds; 0: off.</summary>
    public readonly long UnansweredMilliseconds;
    /// <summary>Networks keyed by VNI.</summary>
    public readonly ForwardingTable<NetworkState> Networks = new();
    /// <summary>Peers keyed by IPv4 address (host order).</summary>
    public readonly ForwardingTable<PeerState> Peers = new();
    /// <summary>Router-wide counters for traffic that has no network (unknown source or VNI…), per worker.</summary>
    public readonly TrafficCounters[] Global;
    /// <summary>The handler of gateway frames the router does not answer itself (<see cref="OverlayRouter.GatewayHandler"/>), or null.</summary>
    public volatile IGatewayHandler? GatewayHandler;

    // Ports by id (the id is the port's epoll token). The array doubles when an id does not fit, so adding is amortized
    // O(1); a slot is written in place with a release, and a reader (a worker resolving an epoll token) does one
    // volatile read of the array. Ids of removed ports are reused, but only once the router's quiesce handshake has
    // passed (see ReleaseId), so a token from an epoll round that began before the removal never finds another port.
    private volatile LocalPort?[] _ports = [];
    private readonly Stack<int> _freeIds = new();
    private int _nextId;
    private readonly Lock _portLock = new();

    /// <summary>Port by id, or null.</summary>
    public LocalPort? Port(int id)
    {
        var ports = _ports;
        return (uint)id < (uint)ports.Length ? Volatile.Read(ref ports[id]) : null;
    }

    /// <summary>All ports (allocates; for status).</summary>
    public List<LocalPort> AllPorts
    {
        get
        {
            var ports = _ports;
            var list = new List<LocalPort>();
            foreach (var p in ports) if (p is not null) list.Add(p);
            return list;
        }
    }

    /// <summary>An unused port id: the lowest freed one first, else the next.</summary>
    public int ReserveId()
    {
        lock (_portLock) return _freeIds.Count > 0 ? _freeIds.Pop() : _nextId++;
    }

    /// <summary>Gives an id back for reuse: only after no worker can still hold a token or port of it.</summary>
    public void ReleaseId(int id)
    {
        lock (_portLock) _freeIds.Push(id);
    }

    /// <summary>Makes the port findable by its id (a worker resolves its epoll token with <see cref="Port"/>).</summary>
    public void PublishPort(LocalPort port)
    {
        lock (_portLock)
        {
            var ports = _ports;
            if (port.Id >= ports.Length)
            {
                var grown = new LocalPort?[Math.Max(Math.Max(port.Id + 1, 2 * ports.Length), 8)];
                Array.Copy(ports, grown, ports.Length);
                grown[port.Id] = port;
                _ports = grown; // volatile: publishes the copy with the new slot
                if (port.Id >= _nextId) _nextId = port.Id + 1;
                return;
            }
            Volatile.Write(ref ports[port.Id], port);
            if (port.Id >= _nextId) _nextId = port.Id + 1;
        }
    }

    /// <summary>Registers a port under its id and on its network, with its FDB and neighbour entries.</summary>
    public void AddPort(LocalPort port, long now)
    {
        PublishPort(port);
        var net = port.Network;
        lock (_portLock) net.Ports.Add(port);
        net.Fdb.Set(port.Mac, new FdbEntry(port.Mac, EntrySource.Local, port, default, now));
        net.Neighbors.Set(port.Address, new NeighborEntry(port.Address, port.Mac, EntrySource.Local, now));
    }

    /// <summary>
    /// Takes a port out of every table the data path reads: its id, its network's ports, its own FDB entry and its
    /// neighbour entry. Entries learned behind it are the caller's to remove once no worker reads its TAP any more.
    /// A worker may still hold the port until the quiesce handshake has passed.
    /// </summary>
    public void RemovePort(LocalPort port)
    {
        var net = port.Network;
        lock (_portLock)
        {
            var ports = _ports;
            if ((uint)port.Id < (uint)ports.Length && ports[port.Id] == port) Volatile.Write(ref ports[port.Id], null);
            net.Ports.Remove(port);
        }
        // Look up, then remove by key: nothing else replaces a local entry (learning and gossip never override one, and
        // attaching is serialised with this by the router's control lock), so the pair needs no lock of its own.
        if (net.Fdb.TryGet(port.Mac, out var f) && f.Port == port) net.Fdb.Remove(port.Mac);
        if (net.Neighbors.TryGet(port.Address, out var n) && n.Source == EntrySource.Local && n.Mac == port.Mac) net.Neighbors.Remove(port.Address);
    }

    /// <summary>
    /// Removes learned FDB and neighbour entries older than the aging time, and learned remote FDB entries whose VTEP
    /// went silent: sent to for <see cref="UnansweredMilliseconds"/> without a frame from the MAC, and with nothing heard
    /// from its VTEP for as long (<see cref="PeerState.LastHeard"/>; a peer no longer in the table counts as silent). The
    /// next frame for such a MAC floods to the network's peers, and the answer learns where the MAC lives now. Static,
    /// local and gossip entries never go this way. Called periodically by the router's housekeeping timer, never by the
    /// data path; one pass over each table, allocating nothing per entry (a list only when an unanswered entry goes, for
    /// <paramref name="removedUnanswered"/>).
    /// </summary>
    /// <param name="now">Environment.TickCount64.</param>
    /// <param name="removedUnanswered">Called for each entry removed as unanswered (network, MAC, VTEP), after the pass.</param>
    /// <returns>Entries aged out, and entries removed as unanswered.</returns>
    public (int Aged, int Unanswered) Sweep(long now, Action<NetworkState, ulong, VtepEndpoint>? removedUnanswered = null)
    {
        int aged = 0, unanswered = 0;
        foreach (var kv in Networks.ToList())
        {
            var net = kv.Value;
            var pass = new SweepPass(this, now);
            net.Fdb.RemoveWhere(pass.Removes);
            net.Neighbors.RemoveWhere((_, n) => n.Source == EntrySource.Learned && now - Volatile.Read(ref n.LastSeen) > AgingMilliseconds);
            Volatile.Write(ref net.LearnedCount, pass.Learned);
            aged += pass.Aged;
            if (pass.Silent is null) continue;
            unanswered += pass.Silent.Count;
            Interlocked.Add(ref net.UnansweredRemoved, pass.Silent.Count);
            if (removedUnanswered is not null)
                foreach (var (mac, vtep) in pass.Silent) removedUnanswered(net, mac, vtep);
        }
        return (aged, unanswered);
    }

    /// <summary>One network's FDB pass of <see cref="Sweep"/>: the predicate and what it counted.</summary>
    private sealed class SweepPass(ForwardingState state, long now)
    {
        public int Aged, Learned;
        public List<(ulong Mac, VtepEndpoint Vtep)>? Silent;

        public bool Removes(ulong mac, FdbEntry e)
        {
            if (!e.Ages) return false;
            if (now - Volatile.Read(ref e.LastSeen) > state.AgingMilliseconds) { Aged++; return true; }
            if (state.UnansweredMilliseconds > 0 && e.Port is null && e.UnansweredBefore(now - state.UnansweredMilliseconds)
                && (!state.Peers.TryGet(e.Remote.Address, out var peer) || now - Volatile.Read(ref peer.LastHeard) >= state.UnansweredMilliseconds))
            {
                (Silent ??= []).Add((mac, e.Remote));
                return true;
            }
            Learned++;
            return false;
        }
    }
}
