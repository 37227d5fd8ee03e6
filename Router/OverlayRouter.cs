using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using System.Collections.Concurrent;
using System.Net;
using UserOverlay.Crypto;
using UserOverlay.Router.Forwarding;
using UserOverlay.Router.Pipeline;

namespace UserOverlay.Router;

/// <summary>
/// One host's overlay router: creates a TAP device for every local endpoint, binds the VXLAN
/// socket, and forwards between them with a fixed set of pipeline threads (one worker per queue,
/// waiting with epoll on the queue's socket and its queue of every TAP; one queue by default, or one per CPU with
/// each worker pinned and packets steered to the CPU they arrived on — see <see cref="RouterOptions.Queues"/> and
/// <see cref="Linux.QueuePolicy"/>). Start it, read its status, dispose
/// it to stop: disposal stops the workers and removes every TAP it created.
/// <para>
/// Networks and endpoints may also be added and removed while it runs (<see cref="AddNetwork"/>, <see cref="RemoveNetwork"/>,
/// <see cref="AttachEndpoint"/>, <see cref="DetachEndpoint"/>): the operations are serialised on one lock, run on the
/// caller's thread, and never stop traffic on the other endpoints. Each is whole or nothing: one that throws leaves
/// nothing behind.
/// </para>
/// Thread-safety: every public member may be called from any thread at any time.
/// </summary>
public sealed partial class OverlayRouter : IRemoteEndpointSink, IDisposable
{
    private readonly ForwardingState _state;
    private readonly IRouterPlatform _platform;
    private readonly List<IUnderlay> _underlays = [];
    private readonly List<IUnderlay> _espUnderlays = [];
    private readonly EspSecurityDatabase? _esp;
    private readonly List<QueueWorker> _workers = [];
    private readonly PacketBufferPool _pool;
    private readonly PacketBufferPool _largePool;
    private readonly Timer _housekeeping;
    private readonly Timer? _espTimer;
    private readonly ILogger _log;
    private readonly long _started = Environment.TickCount64;
    // Read lock-free by the control plane's sink calls; written under _controlLock.
    private readonly ConcurrentDictionary<string, NetworkState> _byName = new(StringComparer.Ordinal);
    // Serialises the control operations (networks, endpoints, peers); everything below is guarded by it.
    private readonly Lock _controlLock = new();
    private readonly Dictionary<(string Netns, string Interface), LocalPort> _byInterface = [];
    private readonly Dictionary<(string Network, uint Address), LocalPort> _byAddress = [];
    private readonly Dictionary<(string Network, ulong Mac), LocalPort> _byMac = [];
    private readonly HashSet<(string Network, ulong Mac)> _staticMacs = [];
    private HashSet<uint> _dynamicPeers = [];
    // Held by InjectFrame while it writes to a TAP, and by detach and Dispose while they close one: an injected frame
    // (written off the pipeline, by a gateway service's thread) never reaches a descriptor that was closed (and reused).
    private readonly Lock _injectLock = new();
    private bool _running; // the workers run: a removed port must be quiesced before its TAP is closed
    private int _disposed;

    /// <summary>The options the router was started with (its networks and endpoints then; see <see cref="Networks"/> and <see cref="Endpoints"/> for now).</summary>
    public RouterOptions Options { get; }

    private OverlayRouter(RouterOptions options, IRouterPlatform platform, ILogger log, PacketBufferPool pool)
    {
        Options = options;
        _platform = platform;
        _log = log;
        _pool = pool;
        int workers = platform.QueueCount(options.Queues);
        // Each worker holds a batch of TAP buffers, a batch of receive buffers (large with UDP GRO) and the coalescer's.
        _largePool = new(Constants.GsoBufferSize, maxBuffers: workers * (2 * options.BatchSize + Offload.Coalescer.MaxPending) + 64);
        _state = new ForwardingState(workers, options.Learning, options.FdbAging, options.UnansweredAging) { DataPort = options.Underlay.Port, UnderlayAddress = options.Underlay.Address };
        long now = Environment.TickCount64;

        foreach (var p in options.Peers)
            _state.Peers.Set(p.Address, new PeerState(p));

        try
        {
            for (int q = 0; q < workers; q++) _underlays.Add(platform.OpenUnderlay(options.Underlay, options.BatchSize, q, workers));
            // With Encryption configured, ESP is ready even when no network is encrypted yet: one may be added at run time.
            if (options.Encryption is { } enc)
            {
                var espOptions = enc.Esp with { CipherLanes = workers };
                int espPort = espOptions.Encapsulation == EspEncapsulation.Udp ? espOptions.UdpPort : 0;
                _esp = new EspSecurityDatabase(options.Underlay.IPAddress, enc.Keys, espOptions, DateTimeOffset.UtcNow);
                _state.Esp = _esp;
                _state.EspPort = (ushort)espPort;
                for (int q = 0; q < workers; q++) _espUnderlays.Add(platform.OpenEspUnderlay(options.Underlay, espPort, options.BatchSize, q, workers));
            }
            foreach (var n in options.Networks) AddNetworkCore(n);
            foreach (var s in options.StaticFdb)
            {
                var net = _byName[s.Network];
                net.Fdb.Set(s.Mac.Value, new FdbEntry(s.Mac.Value, EntrySource.Static, null, s.Vtep, now));
                if (s.Address is uint ip) net.Neighbors.Set(ip, new NeighborEntry(ip, s.Mac.Value, EntrySource.Static, now));
                if (!_state.Peers.TryGet(s.Vtep.Address, out _)) _state.Peers.Set(s.Vtep.Address, new PeerState(s.Vtep));
                _staticMacs.Add((s.Network, s.Mac.Value));
            }
            for (int q = 0; q < workers; q++)
                _workers.Add(new QueueWorker(_state, _underlays[q], _espUnderlays.Count > 0 ? _espUnderlays[q] : null, q, options.BatchSize,
                    pool, _largePool, log, cpu: workers > 1 ? q : -1, useIoUring: options.IoUring));
            foreach (var e in options.Endpoints) AttachCore(e, _byName[e.Network]);
        }
        catch
        {
            foreach (var w in _workers) w.Dispose();
            foreach (var p in _byInterface.Values) p.Tap.Dispose();
            foreach (var u in _espUnderlays) u.Dispose();
            _esp?.Dispose();
            foreach (var u in _underlays) u.Dispose();
            throw;
        }
        foreach (var w in _workers) w.Start();
        foreach (var w in _workers) w.WaitStarted();
        _running = true;
        if (_workers.FirstOrDefault(w => w.IoUringRefusal is not null) is { } refused)
            Log.IoUringUnavailable(log, refused.IoUringRefusal!);
        var period = HousekeepingPeriod(options);
        _housekeeping = new Timer(_ => Housekeeping(), null, period, period);
        // ESP rotation: the database moves SAs at epoch boundaries and reserves sequence numbers (it may fsync),
        // so it ticks on a timer thread, never on a pipeline thread.
        _espTimer = _esp is null ? null : new Timer(_ => EspTick(), null, TimeSpan.FromSeconds(1), TimeSpan.FromMilliseconds(500));
        Log.RouterStarted(log, options.Underlay, options.Networks.Count, options.Endpoints.Count, options.Peers.Count);
    }

    /// <summary>
    /// Validates <paramref name="options"/>, creates every endpoint's TAP device and the VXLAN
    /// socket, and starts forwarding. Throws <see cref="RouterOptionsException"/> for invalid
    /// options and <see cref="RouterException"/> (with a code and one clear sentence) when the
    /// system refuses something; nothing is left behind on failure.
    /// </summary>
    /// <param name="options">The router's configuration.</param>
    /// <param name="platform">Where TAPs and the socket come from; default: the Linux kernel.</param>
    /// <param name="loggerFactory">Logging; default: none.</param>
    public static OverlayRouter Start(RouterOptions options, IRouterPlatform? platform = null, ILoggerFactory? loggerFactory = null)
    {
        ArgumentNullException.ThrowIfNull(options);
        var errors = options.Validate();
        if (errors.Count > 0) throw new RouterOptionsException(errors);
        if (platform is null)
        {
            if (!OperatingSystem.IsLinux())
                throw new RouterException(RouterErrorCode.PlatformNotSupported, "UserOverlay's data path needs Linux (TAP devices, network namespaces, recvmmsg/sendmmsg)");
            platform = LinuxPlatform.Instance;
        }
        var log = (loggerFactory ?? NullLoggerFactory.Instance).CreateLogger("UserOverlay.Router");
        return new OverlayRouter(options, platform, log, new PacketBufferPool());
    }

    /// <summary>
    /// Starts serving <paramref name="network"/> at run time. It is checked with the same rules (and messages) as the
    /// networks of <see cref="RouterOptions"/>, paths starting with <c>Network</c>: <see cref="RouterOptionsException"/>
    /// for a bad field (an encrypted network without <see cref="RouterOptions.Encryption"/> or without its key among them),
    /// <see cref="RouterException"/> with <see cref="RouterErrorCode.Conflict"/> when its name or VNI is taken. Its flood
    /// list starts as the static peers; an encrypted network gets its SAs with them at once.
    /// </summary>
    public void AddNetwork(NetworkOptions network)
    {
        ArgumentNullException.ThrowIfNull(network);
        lock (_controlLock)
        {
            ThrowIfDisposed();
            var errors = new List<OptionError>();
            OptionRules.CheckNetwork(Options, network, "Network", errors);
            OptionRules.CheckKeyDistinct(Options, network, "Network", _byName.Values.Select(n => (n.Options, $"network '{n.Options.Name}'")), errors);
            if (errors.Count > 0) throw new RouterOptionsException(errors);
            if (_byName.ContainsKey(network.Name))
                throw new RouterException(RouterErrorCode.Conflict, $"Network.Name: a network named '{network.Name}' is already on this router");
            if (_state.Networks.TryGet(network.Vni, out var other))
                throw new RouterException(RouterErrorCode.Conflict, $"Network.Vni: VNI {network.Vni} is already used by network '{other.Options.Name}'; each network needs its own VNI");
            AddNetworkCore(network);
            Log.NetworkAdded(_log, network.Name, network.Vni, network.Subnet.ToString());
        }
    }

    /// <summary>Registers a valid network in every table (nothing here can fail half way: the ESP peers go first).</summary>
    private void AddNetworkCore(NetworkOptions n)
    {
        var net = new NetworkState(n, Options.MtuOf(n), _state.Workers) { FloodList = [.. Options.Peers] };
        if (net.Encrypted) SyncEspPeers(net, net.FloodList);
        if (net.GatewayMac != 0)
            net.Neighbors.Set(net.Gateway, new NeighborEntry(net.Gateway, net.GatewayMac, EntrySource.Local, Environment.TickCount64)); // answered by proxy ARP
        _byName[n.Name] = net;
        _state.Networks.Set(n.Vni, net);
    }

    /// <summary>
    /// Stops serving the network named <paramref name="name"/>: its tables, counters and SAs go. Throws
    /// <see cref="RouterException"/> with <see cref="RouterErrorCode.NotFound"/> for an unknown name, and
    /// <see cref="RouterErrorCode.InUse"/>, naming them, while endpoints are attached to it.
    /// </summary>
    public void RemoveNetwork(string name)
    {
        ArgumentNullException.ThrowIfNull(name);
        lock (_controlLock)
        {
            ThrowIfDisposed();
            if (!_byName.TryGetValue(name, out var net))
                throw new RouterException(RouterErrorCode.NotFound, $"network '{name}' is not on this router");
            var attached = net.Ports.ToList();
            if (attached.Count > 0)
                throw new RouterException(RouterErrorCode.InUse,
                    $"network '{name}' still has {attached.Count} endpoint(s) attached ({string.Join(", ", attached.Take(5).Select(p => $"{p.Options.Netns}/{p.Options.Interface}"))}{(attached.Count > 5 ? ", …" : "")}); detach them first");
            _state.Networks.Remove(net.Vni);
            _byName.TryRemove(name, out _);
            foreach (var m in _staticMacs.Where(k => k.Network == name).ToList()) _staticMacs.Remove(m);
            if (net.Encrypted) _esp?.SetPeers(name, []);
            foreach (var c in Interlocked.Exchange(ref net.Captures, null) ?? []) { Interlocked.Add(ref _endedCaptureDrops, c.Dropped); c.End(); }
            Log.NetworkRemoved(_log, name, net.Vni);
        }
    }

    /// <summary>
    /// Attaches an endpoint at run time: creates its TAP device in its namespace with its address, MAC and MTU (its one
    /// route is to the network's subnet: no default route, the router neither routes nor NATs beyond it), and starts
    /// forwarding for it. Throws <see cref="RouterOptionsException"/> for a bad field (the rules of <see cref="RouterOptions"/>'s
    /// endpoints, paths starting with <c>Endpoint</c>), and <see cref="RouterException"/> with
    /// <see cref="RouterErrorCode.NotFound"/> (no such network), <see cref="RouterErrorCode.InterfaceExists"/> (the
    /// namespace already has that interface), <see cref="RouterErrorCode.Conflict"/> (the MAC or address is already on the
    /// network), or the platform's code (<see cref="RouterErrorCode.NamespaceNotFound"/>…). A failed attach leaves no
    /// TAP, address, table entry or epoll registration behind.
    /// </summary>
    public LocalEndpointInfo AttachEndpoint(EndpointOptions endpoint)
    {
        ArgumentNullException.ThrowIfNull(endpoint);
        lock (_controlLock)
        {
            ThrowIfDisposed();
            if (!_byName.TryGetValue(endpoint.Network ?? "", out var net))
                throw new RouterException(RouterErrorCode.NotFound, string.IsNullOrEmpty(endpoint.Network)
                    ? "Endpoint.Network is required"
                    : $"Endpoint.Network: network '{endpoint.Network}' is not on this router");
            var errors = new List<OptionError>();
            OptionRules.CheckEndpoint(endpoint, net.Options, "Endpoint", errors);
            if (errors.Count > 0) throw new RouterOptionsException(errors);
            var mac = endpoint.EffectiveMac;
            if (_byInterface.TryGetValue((endpoint.Netns, endpoint.Interface), out var holder))
                throw new RouterException(RouterErrorCode.InterfaceExists,
                    $"Endpoint.Interface: namespace '{endpoint.Netns}' already has interface '{endpoint.Interface}' (an endpoint of network '{holder.Network.Options.Name}')");
            if (_byAddress.TryGetValue((net.Options.Name, endpoint.Address), out holder))
                throw new RouterException(RouterErrorCode.Conflict,
                    $"Endpoint.Address: {VtepEndpoint.FormatAddress(endpoint.Address)} is already used on network '{net.Options.Name}' by {holder.Options.Netns}/{holder.Options.Interface}");
            if (_byMac.TryGetValue((net.Options.Name, mac.Value), out holder))
                throw new RouterException(RouterErrorCode.Conflict,
                    $"Endpoint.Mac: {mac} is already used on network '{net.Options.Name}' by {holder.Options.Netns}/{holder.Options.Interface}");
            if (_staticMacs.Contains((net.Options.Name, mac.Value)))
                throw new RouterException(RouterErrorCode.Conflict, $"Endpoint.Mac: {mac} is a static FDB entry's MAC on network '{net.Options.Name}' (a remote one)");
            var port = AttachCore(endpoint, net);
            return InfoOf(port);
        }
    }

    /// <summary>
    /// Creates the TAP and registers the port: id, epoll of every worker, network ports, FDB and neighbour entries.
    /// Undoes what it did when a step fails. Caller: the constructor, or <see cref="AttachEndpoint"/> under the lock.
    /// </summary>
    private LocalPort AttachCore(EndpointOptions e, NetworkState net)
    {
        var no = net.Options;
        int id = _state.ReserveId();
        ITapDevice tap;
        try
        {
            tap = _platform.CreateTap(new TapRequest(e.Netns, e.Interface, e.EffectiveMac, net.Mtu, e.Address, e.PrefixLength, Options.TapOffload,
                _state.Workers, e.HandOff));
        }
        catch
        {
            _state.ReleaseId(id);
            throw;
        }
        var port = new LocalPort(id, net, e, tap);
        int registered = 0;
        try
        {
            _state.PublishPort(port);
            for (; registered < _workers.Count; registered++) _workers[registered].AddPort(port);
        }
        catch
        {
            for (int i = 0; i < registered; i++) _workers[i].RemovePort(port);
            _state.RemovePort(port);
            Quiesce(); // a worker may have read from it through the registrations made
            tap.Dispose();
            _state.ReleaseId(id);
            throw;
        }
        _state.AddPort(port, Environment.TickCount64);
        _byInterface[(e.Netns, e.Interface)] = port;
        _byAddress[(no.Name, e.Address)] = port;
        _byMac[(no.Name, port.Mac)] = port;
        Log.EndpointAttached(_log, e.Interface, e.Netns, e.Network, net.Vni, $"{VtepEndpoint.FormatAddress(e.Address)}/{e.PrefixLength}", e.EffectiveMac);
        return port;
    }

    /// <summary>
    /// The kernel's name now for the TAP of the endpoint <paramref name="interfaceName"/> in <paramref name="netns"/> on
    /// <paramref name="network"/>: the name it was made with, or the one a container runtime renamed it to after moving it
    /// (a <see cref="EndpointOptions.HandOff"/> endpoint). Null when there is no such endpoint, or its TAP is gone.
    /// </summary>
    public string? InterfaceNameOf(string network, string netns, string interfaceName)
    {
        lock (_controlLock)
        {
            ThrowIfDisposed();
            if (!_byInterface.TryGetValue((netns, interfaceName), out var port) || port.Network.Options.Name != network) return null;
            return port.Tap is Tap.LinuxTap linux ? linux.KernelName() : port.Tap.IsGone ? null : interfaceName;
        }
    }

    /// <summary>
    /// Detaches the endpoint <paramref name="interfaceName"/> in <paramref name="netns"/> from <paramref name="network"/>:
    /// it leaves every table and every worker's epoll, the workers are quiesced (none still holds the port), and its
    /// TAP is closed, which removes the device. False when there is no such endpoint. A namespace already deleted is
    /// fine (its devices went with it).
    /// </summary>
    public bool DetachEndpoint(string network, string netns, string interfaceName)
    {
        ArgumentNullException.ThrowIfNull(network);
        ArgumentNullException.ThrowIfNull(netns);
        ArgumentNullException.ThrowIfNull(interfaceName);
        lock (_controlLock)
        {
            ThrowIfDisposed();
            if (!_byInterface.TryGetValue((netns, interfaceName), out var port) || port.Network.Options.Name != network) return false;
            var net = port.Network;
            foreach (var w in _workers) w.RemovePort(port);
            _state.RemovePort(port);
            _byInterface.Remove((netns, interfaceName));
            _byAddress.Remove((network, port.Address));
            _byMac.Remove((network, port.Mac));
            Quiesce();
            // No worker reads the port's TAP any more, so nothing learns behind it now: entries learned behind it (MACs
            // other than its own) go, and a second handshake lets a round that looked one up finish before the TAP closes.
            if (Volatile.Read(ref port.LearnedEntries) > 0 && net.Fdb.RemoveWhere((_, f) => f.Port == port) > 0)
                Quiesce();
            lock (_injectLock)
            {
                port.Closed = true;
                port.Tap.Dispose();
            }
            _state.ReleaseId(port.Id);
            Log.EndpointDetached(_log, interfaceName, netns, network);
            return true;
        }
    }

    /// <summary>
    /// The quiesce handshake: returns once every worker has finished the round it was in, so none still holds what was
    /// taken out of the tables before the call (a port, its TAP, a table entry).
    /// <para>
    /// Ordering. The caller has unpublished the port (volatile writes, epoll_ctl DEL). Then, here: a full fence, and a
    /// read of each worker's <see cref="QueueWorker.Epoch"/>; the worker increments its epoch with a full fence at the end
    /// of every round, before it reads the tables again. That is Dekker's pattern — each side stores, fences, then loads
    /// what the other stored — so at least one side sees the other's store: if this read misses the worker's increment
    /// (we read e), the worker's next round, which starts after that increment, must see the port gone. Rounds that
    /// may have seen it are the one in progress when we read e (or the wait in epoll_wait before it); waiting until the
    /// epoch passes e covers them. An idle worker is woken (its eventfd) so that it finishes a round at once.
    /// </para>
    /// </summary>
    private void Quiesce()
    {
        if (!_running) return; // before the workers start there is no round to wait for
        Interlocked.MemoryBarrier();
        var seen = new long[_workers.Count];
        for (int i = 0; i < _workers.Count; i++) seen[i] = _workers[i].Epoch;
        foreach (var w in _workers) w.Wake();
        for (int i = 0; i < _workers.Count; i++)
        {
            var w = _workers[i];
            var spin = new SpinWait();
            while (w.Epoch == seen[i] && w.Running) spin.SpinOnce(sleep1Threshold: 20);
        }
    }

    /// <summary>The pipeline workers' kernel thread ids (/proc/self/task/ID), for tests that measure their CPU time.</summary>
    internal IReadOnlyList<int> WorkerThreadIds => _workers.Select(w => w.ThreadId).ToList();

    /// <summary>The networks served now (sorted by name).</summary>
    public IReadOnlyList<NetworkOptions> Networks =>
        _byName.Values.Select(n => n.Options).OrderBy(n => n.Name, StringComparer.Ordinal).ToList();

    /// <summary>The endpoints attached now (by port id: start-time ones first, in their order).</summary>
    public IReadOnlyList<EndpointOptions> Endpoints => _state.AllPorts.Select(p => p.Options).ToList();

    /// <summary>
    /// The handler of frames for a gateway the router does not answer itself (see <see cref="IGatewayHandler"/>), or
    /// null (the default: such frames are dropped and counted). May be set at any time; workers see it with their next frame.
    /// </summary>
    public IGatewayHandler? GatewayHandler
    {
        get => _state.GatewayHandler;
        set => _state.GatewayHandler = value;
    }

    /// <summary>
    /// Writes <paramref name="frame"/> (a whole Ethernet frame, checksums complete) to the TAP of the local endpoint of
    /// <paramref name="network"/> whose MAC is the frame's destination: how a gateway service that answers off the
    /// pipeline (the DNS responder, on its own thread) delivers a reply. False when the network or the endpoint is gone
    /// (detached meanwhile), the frame is no unicast Ethernet frame, longer than the network's MTU allows, or the TAP
    /// refused it. Any thread; the frame is borrowed for the call. Takes no control lock: it never waits on an attach.
    /// </summary>
    public bool InjectFrame(string network, ReadOnlySpan<byte> frame)
    {
        ArgumentNullException.ThrowIfNull(network);
        if (frame.Length < Constants.EthernetHeaderLength || (frame[0] & 1) != 0) return false;
        if (!_byName.TryGetValue(network, out var net) || frame.Length > net.MaxFrameLength) return false;
        ulong dst = Wire.EthernetFrame.Destination(frame);
        if (!net.Fdb.TryGet(dst, out var entry) || entry.Port is not { } port) return false;
        lock (_injectLock)
        {
            if (port.Closed || Volatile.Read(ref _disposed) != 0) return false;
            return port.Tap.Write(frame);
        }
    }

    private void ThrowIfDisposed() => ObjectDisposedException.ThrowIf(Volatile.Read(ref _disposed) != 0, this);

    private static LocalEndpointInfo InfoOf(LocalPort p) =>
        new(p.Network.Options.Name, p.Network.Vni, new MacAddress(p.Mac), p.Address, p.Options.PrefixLength);

    /// <summary>
    /// How often the housekeeping sweep runs: a tenth of the aging time, and a fifth of the unanswered window (so a silent
    /// VTEP's entries go at most a fifth late), within 100 ms to 10 s. With the defaults (300 s, 5 s): every second.
    /// </summary>
    internal static TimeSpan HousekeepingPeriod(RouterOptions options)
    {
        double ms = options.FdbAging.TotalMilliseconds / 10;
        if (options.UnansweredAging > TimeSpan.Zero) ms = Math.Min(ms, options.UnansweredAging.TotalMilliseconds / 5);
        return TimeSpan.FromMilliseconds(Math.Clamp(ms, 100, 10_000));
    }

    private void Housekeeping()
    {
        try
        {
            var (aged, _) = _state.Sweep(Environment.TickCount64, _log.IsEnabled(LogLevel.Debug) ? LogUnanswered : null);
            if (aged > 0) Log.AgedOut(_log, aged);
        }
        catch (ObjectDisposedException) { }
    }

    private void LogUnanswered(NetworkState net, ulong mac, VtepEndpoint vtep) =>
        Log.UnansweredRemoved(_log, new MacAddress(mac), net.Options.Name, vtep, _state.UnansweredMilliseconds / 1000.0);

    private void EspTick()
    {
        try { _esp?.Tick(DateTimeOffset.UtcNow); }
        catch (ObjectDisposedException) { }
        catch (Exception e) { Log.EspTickFailed(_log, e); }
    }

    /// <summary>Makes the ESP peers (outbound SAs) of an encrypted network the given VTEPs plus the static peers.</summary>
    private void SyncEspPeers(NetworkState net, IReadOnlyCollection<VtepEndpoint> vteps)
    {
        if (_esp is null || !net.Encrypted) return;
        var all = vteps.Concat(Options.Peers).Where(v => v.Address != Options.Underlay.Address).Select(v => v.Address).Distinct().ToList();
        var peers = _esp.SetPeers(net.Options.Name, all.Select(VtepEndpoint.ToIPAddress));
        net.EspPeers.Update(b =>
        {
            foreach (var kv in b.Current().ToList()) b.Remove(kv.Key);
            foreach (var p in peers) b.Set(IpOf(p.Peer), p);
        });
    }

    private static uint IpOf(IPAddress a)
    {
        Span<byte> b = stackalloc byte[4];
        a.MapToIPv4().TryWriteBytes(b, out _);
        return System.Buffers.Binary.BinaryPrimitives.ReadUInt32BigEndian(b);
    }

    /// <summary>The SAs this router holds now (for `useroverlay sa` against a live router); empty without encryption. Contains secrets.</summary>
    public IReadOnlyList<EspSaDescription> DescribeSecurityAssociations() => _esp?.Describe() ?? [];

    /// <summary>This host's endpoints now, as a control plane advertises them.</summary>
    public IReadOnlyList<LocalEndpointInfo> LocalEndpoints => _state.AllPorts.Select(InfoOf).ToList();

    /// <inheritdoc />
    public bool SetRemoteEndpoint(string network, MacAddress mac, uint? address, VtepEndpoint vtep)
    {
        if (!_byName.TryGetValue(network, out var net)) return false;
        if (mac.Value == net.GatewayMac) return false; // each host answers for its own gateway: never remote
        long now = Environment.TickCount64;
        bool learnedBefore = false;
        net.Fdb.Update(b =>
        {
            if (b.TryGet(mac.Value, out var old))
            {
                if (old.Port is not null) return; // a local endpoint's MAC is never remote
                learnedBefore = old.Source == EntrySource.Learned;
            }
            b.Set(mac.Value, new FdbEntry(mac.Value, EntrySource.Gossip, null, vtep, now));
        });
        if (learnedBefore) Interlocked.Decrement(ref net.LearnedCount);
        if (address is uint ip)
            net.Neighbors.SetUnless(ip, new NeighborEntry(ip, mac.Value, EntrySource.Gossip, now), old => old.Source == EntrySource.Local);
        return true;
    }

    /// <inheritdoc />
    public bool RemoveRemoteEndpoint(string network, MacAddress mac, uint? address)
    {
        if (!_byName.TryGetValue(network, out var net)) return false;
        bool removed = net.Fdb.RemoveWhere((k, e) => k == mac.Value && e.Source == EntrySource.Gossip) > 0;
        if (address is uint ip)
            removed |= net.Neighbors.RemoveWhere((k, n) => k == ip && n.Source == EntrySource.Gossip && n.Mac == mac.Value) > 0;
        return removed;
    }

    /// <inheritdoc />
    public bool SetFloodList(string network, IReadOnlyCollection<VtepEndpoint> vteps)
    {
        var list = vteps.Where(v => v.Address != Options.Underlay.Address).Distinct().OrderBy(v => v.Address).ToArray();
        lock (_controlLock) // with RemoveNetwork: no SAs made for a network that has just gone
        {
            if (!_byName.TryGetValue(network, out var net)) return false;
            SyncEspPeers(net, list); // SAs first, so the first flooded frame already has one
            net.FloodList = list;
            return true;
        }
    }

    /// <inheritdoc />
    public void SetDynamicPeers(IReadOnlyCollection<VtepEndpoint> peers)
    {
        lock (_controlLock)
        {
            var next = peers.Where(p => p.Address != Options.Underlay.Address).ToDictionary(p => p.Address);
            foreach (uint gone in _dynamicPeers.Where(a => !next.ContainsKey(a)))
                if (!Options.Peers.Any(p => p.Address == gone)) _state.Peers.Remove(gone);
            foreach (var p in next.Values)
            {
                if (Options.Peers.Any(c => c.Address == p.Address)) continue;
                if (_state.Peers.TryGet(p.Address, out var known) && known.Endpoint == p) continue; // keeps its last-heard stamp
                _state.Peers.Set(p.Address, new PeerState(p, known is null ? 0 : Volatile.Read(ref known.LastHeard), known?.Received));
            }
            _dynamicPeers = [.. next.Keys];
        }
    }

    /// <summary>A snapshot of configuration, tables and counters.</summary>
    public RouterStatus GetStatus()
    {
        long now = Environment.TickCount64;
        var networks = new List<NetworkStatus>();
        foreach (var net in _state.Networks.ToList().Select(kv => kv.Value).OrderBy(n => n.Options.Name, StringComparer.Ordinal))
        {
            var sum = new TrafficCounters();
            foreach (var c in net.Counters) sum.Add(c);
            networks.Add(new NetworkStatus(
                net.Options.Name, net.Vni, net.Mtu, net.Options.Subnet.ToString(),
                net.Ports.ToList().Select(p => new EndpointStatus(p.Options.Netns, p.Options.Interface, new MacAddress(p.Mac).ToString(),
                    $"{VtepEndpoint.FormatAddress(p.Address)}/{p.Options.PrefixLength}", Volatile.Read(ref p.GoneQueues) > 0)).ToList(),
                net.Fdb.ToList().Select(kv => kv.Value).OrderBy(e => e.Mac).Select(e => new FdbEntryStatus(
                    new MacAddress(e.Mac).ToString(),
                    e.Port is { } p ? $"local:{p.Options.Netns}/{p.Options.Interface}" : e.Remote.ToString(),
                    e.Source.ToString().ToLowerInvariant(),
                    Math.Round((now - Volatile.Read(ref e.LastSeen)) / 1000.0, 1))).ToList(),
                net.Neighbors.ToList().Select(kv => kv.Value).OrderBy(n => n.Ip).Select(n => new NeighborStatus(
                    VtepEndpoint.FormatAddress(n.Ip), new MacAddress(n.Mac).ToString(), n.Source.ToString().ToLowerInvariant(),
                    Math.Round((now - Volatile.Read(ref n.LastSeen)) / 1000.0, 1))).ToList(),
                net.FloodList.Select(v => v.ToString()).ToList(),
                ToStatus(sum, Interlocked.Read(ref net.UnansweredRemoved)),
                net.GatewayMac != 0 ? VtepEndpoint.FormatAddress(net.Gateway) : null,
                net.GatewayMac != 0 ? new MacAddress(net.GatewayMac).ToString() : null,
                net.Options.Internal));
        }
        var global = new TrafficCounters();
        foreach (var c in _state.Global) global.Add(c);
        var peers = _state.Peers.ToList().Select(kv => kv.Value).OrderBy(p => p.Endpoint.Address).ToList();
        return new RouterStatus(
            Options.Underlay.ToString(),
            peers.Select(p => p.Endpoint.ToString()).ToList(),
            Options.Learning,
            Options.FdbAging.TotalSeconds,
            Math.Round((now - _started) / 1000.0, 1),
            networks,
            DropsOf(global),
            GC.GetTotalAllocatedBytes(precise: true),
            EspStatusOf(_esp),
            _workers.Count,
            _workers.Count > 0 && _workers.All(w => w.UsesIoUring) ? "io_uring" : "syscalls",
            peers.Select(p => new PeerStatus(p.Endpoint.ToString(), Volatile.Read(ref p.LastHeard) is long heard and > 0
                ? Math.Round((now - heard) / 1000.0, 1) : null)).ToList(),
            Options.UnansweredAging.TotalSeconds);
    }

    private static EspStatusInfo? EspStatusOf(EspSecurityDatabase? esp)
    {
        if (esp is null) return null;
        var o = esp.Options;
        return new EspStatusInfo(
            o.Encapsulation == EspEncapsulation.Udp ? "udp" : "transport",
            o.Encapsulation == EspEncapsulation.Udp ? o.UdpPort : 0,
            o.RekeyInterval.TotalSeconds, esp.CurrentEpoch, esp.InboundCount, esp.Counters.Rotations, esp.Counters.CurrentSpiCollisions,
            Enum.GetValues<EspOpenStatus>().Where(v => v != EspOpenStatus.Ok).ToDictionary(v => v.ToString(), v => esp.Counters.Dropped(v)),
            Enum.GetValues<EspSealStatus>().Where(v => v != EspSealStatus.Ok).ToDictionary(v => v.ToString(), v => esp.Counters.NotSent(v)));
    }

    private static NetworkCounters ToStatus(TrafficCounters c, long unansweredRemoved) => new(
        c.TxFrames, c.TxBytes, c.EncapsulatedDatagrams, c.RxFrames, c.RxBytes, c.DeliveredFrames,
        c.ProxyArpReplies, c.FloodedFrames, DropsOf(c), c.GatewayReplies, unansweredRemoved, c.TapQueuesGone);

    private static Dictionary<string, long> DropsOf(TrafficCounters c)
    {
        var d = new Dictionary<string, long>(StringComparer.Ordinal);
        foreach (var r in Enum.GetValues<DropReason>()) d[DropReasons.Name(r)] = c.Drops[(int)r];
        return d;
    }

    /// <summary>Stops forwarding, removes every TAP device this router created and closes the socket.</summary>
    public void Dispose()
    {
        lock (_controlLock) // after a control operation in progress, and before none
        {
            if (Interlocked.Exchange(ref _disposed, 1) != 0) return;
            _running = false;
            foreach (var net in _byName.Values) foreach (var c in Interlocked.Exchange(ref net.Captures, null) ?? []) c.End();
            foreach (var c in Interlocked.Exchange(ref _state.UnderlayCaptures, null) ?? []) c.End();
            _housekeeping.Dispose();
            _espTimer?.Dispose();
            foreach (var w in _workers) w.Dispose(); // wakes its epoll and joins the thread
            var ports = _byInterface.Values.ToList();
            lock (_injectLock) foreach (var p in ports) { p.Closed = true; p.Tap.Dispose(); }
            foreach (var u in _underlays) u.Dispose();
            foreach (var u in _espUnderlays) u.Dispose();
            _esp?.Dispose();
            Log.RouterStopped(_log, ports.Count);
        }
    }
}
