using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
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
/// Thread-safety: <see cref="GetStatus"/> may be called from any thread at any time.
/// </summary>
public sealed class OverlayRouter : IRemoteEndpointSink, IDisposable
{
    private readonly ForwardingState _state;
    private readonly List<IUnderlay> _underlays = [];
    private readonly List<IUnderlay> _espUnderlays = [];
    private readonly EspSecurityDatabase? _esp;
    private readonly List<LocalPort> _ports = [];
    private readonly List<QueueWorker> _workers = [];
    private readonly PacketBufferPool _pool;
    private readonly PacketBufferPool _largePool;
    private readonly Timer _housekeeping;
    private readonly Timer? _espTimer;
    private readonly ILogger _log;
    private readonly long _started = Environment.TickCount64;
    private readonly Dictionary<string, NetworkState> _byName = new(StringComparer.Ordinal);
    private readonly Lock _controlLock = new();
    private HashSet<uint> _dynamicPeers = [];
    private int _disposed;

    /// <summary>The options the router runs with.</summary>
    public RouterOptions Options { get; }

    private OverlayRouter(RouterOptions options, IRouterPlatform platform, ILogger log, PacketBufferPool pool)
    {
        Options = options;
        _log = log;
        _pool = pool;
        int workers = platform.QueueCount(options.Queues);
        // Each worker holds a batch of TAP buffers, a batch of receive buffers (large with UDP GRO) and the coalescer's.
        _largePool = new(Constants.GsoBufferSize, maxBuffers: workers * (2 * options.BatchSize + Offload.Coalescer.MaxPending) + 64);
        _state = new ForwardingState(workers, options.Learning, options.FdbAging) { DataPort = options.Underlay.Port };
        long now = Environment.TickCount64;

        foreach (var p in options.Peers)
            _state.Peers.Set(p.Address, new PeerState(p));
        VtepEndpoint[] flood = [.. options.Peers];
        var byName = new Dictionary<string, NetworkState>(StringComparer.Ordinal);
        foreach (var n in options.Networks)
        {
            var net = new NetworkState(n, options.MtuOf(n), workers) { FloodList = flood };
            byName[n.Name] = net;
            _byName[n.Name] = net;
            _state.Networks.Set(n.Vni, net);
        }
        foreach (var s in options.StaticFdb)
        {
            var net = byName[s.Network];
            net.Fdb.Set(s.Mac.Value, new FdbEntry(s.Mac.Value, EntrySource.Static, null, s.Vtep, now));
            if (s.Address is uint ip) net.Neighbors.Set(ip, new NeighborEntry(ip, s.Mac.Value, EntrySource.Static, now));
            if (!_state.Peers.TryGet(s.Vtep.Address, out _)) _state.Peers.Set(s.Vtep.Address, new PeerState(s.Vtep));
        }

        try
        {
            for (int q = 0; q < workers; q++) _underlays.Add(platform.OpenUnderlay(options.Underlay, options.BatchSize, q, workers));
            if (options.Networks.Any(n => n.Encrypted))
            {
                var enc = options.Encryption!;
                var espOptions = enc.Esp with { CipherLanes = workers };
                int espPort = espOptions.Encapsulation == EspEncapsulation.Udp ? espOptions.UdpPort : 0;
                _esp = new EspSecurityDatabase(options.Underlay.IPAddress, enc.Keys, espOptions, DateTimeOffset.UtcNow);
                _state.Esp = _esp;
                _state.EspPort = (ushort)espPort;
                foreach (var net in byName.Values.Where(n => n.Encrypted))
                    SyncEspPeers(net, net.FloodList);
                for (int q = 0; q < workers; q++) _espUnderlays.Add(platform.OpenEspUnderlay(options.Underlay, espPort, options.BatchSize, q, workers));
            }
            for (int q = 0; q < workers; q++)
                _workers.Add(new QueueWorker(_state, _underlays[q], _espUnderlays.Count > 0 ? _espUnderlays[q] : null, q, options.BatchSize,
                    pool, _largePool, log, cpu: workers > 1 ? q : -1, useIoUring: options.IoUring));
            for (int i = 0; i < options.Endpoints.Count; i++)
            {
                var e = options.Endpoints[i];
                var net = byName[e.Network];
                var tap = platform.CreateTap(new TapRequest(e.Netns, e.Interface, e.EffectiveMac, net.Mtu, e.Address, e.PrefixLength, options.TapOffload, workers));
                var port = new LocalPort(i, net, e, tap);
                _ports.Add(port);
                _state.AddPort(port, now);
                foreach (var w in _workers) w.AddPort(port);
                Log.EndpointAttached(log, e.Interface, e.Netns, e.Network, net.Vni, $"{VtepEndpoint.FormatAddress(e.Address)}/{e.PrefixLength}", e.EffectiveMac);
            }
        }
        catch
        {
            foreach (var w in _workers) w.Dispose();
            foreach (var p in _ports) p.Tap.Dispose();
            foreach (var u in _espUnderlays) u.Dispose();
            _esp?.Dispose();
            foreach (var u in _underlays) u.Dispose();
            throw;
        }
        foreach (var w in _workers) w.Start();
        foreach (var w in _workers) w.WaitStarted();
        if (_workers.FirstOrDefault(w => w.IoUringRefusal is not null) is { } refused)
            Log.IoUringUnavailable(log, refused.IoUringRefusal!);
        var period = TimeSpan.FromMilliseconds(Math.Clamp(options.FdbAging.TotalMilliseconds / 10, 100, 10_000));
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

    private void Housekeeping()
    {
        try
        {
            int removed = _state.Sweep(Environment.TickCount64);
            if (removed > 0) Log.AgedOut(_log, removed);
        }
        catch (ObjectDisposedException) { }
    }

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

    /// <summary>This host's endpoints, as a control plane advertises them.</summary>
    public IReadOnlyList<LocalEndpointInfo> LocalEndpoints =>
        _ports.Select(p => new LocalEndpointInfo(p.Network.Options.Name, p.Network.Vni, new MacAddress(p.Mac), p.Address, p.Options.PrefixLength)).ToList();

    /// <inheritdoc />
    public bool SetRemoteEndpoint(string network, MacAddress mac, uint? address, VtepEndpoint vtep)
    {
        if (!_byName.TryGetValue(network, out var net)) return false;
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
        if (!_byName.TryGetValue(network, out var net)) return false;
        var list = vteps.Where(v => v.Address != Options.Underlay.Address).Distinct().OrderBy(v => v.Address).ToArray();
        SyncEspPeers(net, list); // SAs first, so the first flooded frame already has one
        net.FloodList = list;
        return true;
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
                if (!Options.Peers.Any(c => c.Address == p.Address)) _state.Peers.Set(p.Address, new PeerState(p));
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
                net.Ports.Select(p => new EndpointStatus(p.Options.Netns, p.Options.Interface, new MacAddress(p.Mac).ToString(),
                    $"{VtepEndpoint.FormatAddress(p.Address)}/{p.Options.PrefixLength}")).ToList(),
                net.Fdb.ToList().Select(kv => kv.Value).OrderBy(e => e.Mac).Select(e => new FdbEntryStatus(
                    new MacAddress(e.Mac).ToString(),
                    e.Port is { } p ? $"local:{p.Options.Netns}/{p.Options.Interface}" : e.Remote.ToString(),
                    e.Source.ToString().ToLowerInvariant(),
                    Math.Round((now - Volatile.Read(ref e.LastSeen)) / 1000.0, 1))).ToList(),
                net.Neighbors.ToList().Select(kv => kv.Value).OrderBy(n => n.Ip).Select(n => new NeighborStatus(
                    VtepEndpoint.FormatAddress(n.Ip), new MacAddress(n.Mac).ToString(), n.Source.ToString().ToLowerInvariant(),
                    Math.Round((now - Volatile.Read(ref n.LastSeen)) / 1000.0, 1))).ToList(),
                net.FloodList.Select(v => v.ToString()).ToList(),
                ToStatus(sum)));
        }
        var global = new TrafficCounters();
        foreach (var c in _state.Global) global.Add(c);
        return new RouterStatus(
            Options.Underlay.ToString(),
            _state.Peers.ToList().Select(kv => kv.Value.Endpoint).OrderBy(p => p.Address).Select(p => p.ToString()).ToList(),
            Options.Learning,
            Options.FdbAging.TotalSeconds,
            Math.Round((now - _started) / 1000.0, 1),
            networks,
            DropsOf(global),
            GC.GetTotalAllocatedBytes(precise: true),
            EspStatusOf(_esp),
            _workers.Count,
            _workers.Count > 0 && _workers.All(w => w.UsesIoUring) ? "io_uring" : "syscalls");
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

    private static NetworkCounters ToStatus(TrafficCounters c) => new(
        c.TxFrames, c.TxBytes, c.EncapsulatedDatagrams, c.RxFrames, c.RxBytes, c.DeliveredFrames,
        c.ProxyArpReplies, c.FloodedFrames, DropsOf(c));

    private static Dictionary<string, long> DropsOf(TrafficCounters c)
    {
        var d = new Dictionary<string, long>(StringComparer.Ordinal);
        foreach (var r in Enum.GetValues<DropReason>()) d[DropReasons.Name(r)] = c.Drops[(int)r];
        return d;
    }

    /// <summary>Stops forwarding, removes every TAP device this router created and closes the socket.</summary>
    public void Dispose()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0) return;
        _housekeeping.Dispose();
        _espTimer?.Dispose();
        foreach (var w in _workers) w.Dispose(); // wakes its epoll and joins the thread
        foreach (var p in _ports) p.Tap.Dispose();
        foreach (var u in _underlays) u.Dispose();
        foreach (var u in _espUnderlays) u.Dispose();
        _esp?.Dispose();
        Log.RouterStopped(_log, _ports.Count);
    }
}
