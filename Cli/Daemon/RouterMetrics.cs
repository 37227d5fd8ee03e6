using Microsoft.Extensions.Hosting;
using Prometheus;
using UserOverlay.Router;

namespace UserOverlay.Cli.Daemon;

/// <summary>
/// Prometheus metrics of a running router, served in the text exposition format at
/// http://ADDRESS/metrics (prometheus-net's Kestrel server). The data path keeps its own plain
/// per-worker counters; they are copied into the Prometheus collectors only when scraped.
/// <list type="bullet">
/// <item><c>useroverlay_network_frames_total{network,vni,direction}</c> and <c>useroverlay_network_bytes_total</c>: direction tx = read from local endpoints, rx = accepted from the underlay</item>
/// <item><c>useroverlay_network_vxlan_datagrams_sent_total</c>, <c>useroverlay_network_delivered_frames_total</c>, <c>useroverlay_network_flooded_frames_total</c>, <c>useroverlay_network_proxy_arp_replies_total</c>, <c>useroverlay_network_fdb_unanswered_removed_total</c></item>
/// <item><c>useroverlay_drops_total{network,reason}</c> (network="" for drops that belong to no network)</item>
/// <item><c>useroverlay_fdb_entries{network,source}</c></item>
/// <item><c>useroverlay_gossip_members{state}</c> (gossip mode): members by state as this node sees them — alive, suspect, dead, left</item>
/// <item>per peer, ESP, captures and workers: see <see cref="OperatorMetrics"/></item>
/// <item><c>useroverlay_gc_allocated_bytes_total</c>: GC.GetTotalAllocatedBytes of the process — its growth per forwarded frame is the data path's allocation (zero), plus the control plane's own</item>
/// <item><c>useroverlay_dns_queries_total{result}</c>, <c>useroverlay_dns_drops_total{reason}</c>: the gateways' DNS responder (<see cref="DnsMetrics"/>)</item>
/// </list>
/// A hosted service: the last to start (it reads the router's status and gossip's members), the first to stop.
/// </summary>
internal sealed class RouterMetrics(DaemonOptions options, RouterService router, GossipService gossip, ClusterService cluster, DnsService dns) : IHostedService, IDisposable
{
    private KestrelMetricServer? _server;

    /// <inheritdoc/>
    public Task StartAsync(CancellationToken cancellationToken)
    {
        var listen = options.Config.Metrics ?? throw new InvalidOperationException("the configuration has no metrics: address");
        Func<RouterStatus> status = router.Router.GetStatus;
        Func<UserOverlay.Control.Gossip.MembersResponse?> members = () => gossip.Current?.GetMembers();
        var registry = Metrics.NewCustomRegistry();
        var f = Metrics.WithCustomRegistry(registry);
        string[] netLabels = ["network", "vni"];
        var frames = f.CreateCounter("useroverlay_network_frames_total", "Frames per network: tx = read from local endpoints, rx = accepted from the underlay.", [.. netLabels, "direction"]);
        var bytes = f.CreateCounter("useroverlay_network_bytes_total", "Bytes of inner Ethernet frames per network and direction.", [.. netLabels, "direction"]);
        var sent = f.CreateCounter("useroverlay_network_vxlan_datagrams_sent_total", "VXLAN datagrams sent to peers (a flooded frame counts once per peer).", netLabels);
        var delivered = f.CreateCounter("useroverlay_network_delivered_frames_total", "Frames written to local endpoints.", netLabels);
        var flooded = f.CreateCounter("useroverlay_network_flooded_frames_total", "Broadcast, multicast and unknown-unicast frames flooded.", netLabels);
        var proxied = f.CreateCounter("useroverlay_network_proxy_arp_replies_total", "ARP requests answered locally.", netLabels);
        var unanswered = f.CreateCounter("useroverlay_network_fdb_unanswered_removed_total", "Learned entries forgotten because their MAC and VTEP stopped answering (fdb_unanswered).", netLabels);
        var drops = f.CreateCounter("useroverlay_drops_total", "Dropped frames and datagrams by reason (network is empty for drops that belong to no network).", "network", "reason");
        var fdb = f.CreateGauge("useroverlay_fdb_entries", "FDB entries per network and source.", "network", "source");
        var alloc = f.CreateCounter("useroverlay_gc_allocated_bytes_total", "Bytes allocated by the process since start (GC.GetTotalAllocatedBytes).");
        var uptime = f.CreateGauge("useroverlay_uptime_seconds", "Seconds since the router started.");
        var memberStates = f.CreateGauge("useroverlay_gossip_members", "Gossip members by state, as this node sees them (itself included).", "state");
        var clusterActive = f.CreateGauge("useroverlay_cluster_active", "1 while this host is in a cluster (swarm init or join), else 0.");
        var clusterConnected = f.CreateGauge("useroverlay_cluster_connected", "1 while the last request to the cluster's managers succeeded, else 0.");
        var clusterRevision = f.CreateGauge("useroverlay_cluster_state_revision", "Revision of the managers' state this node applied last.");
        var clusterKeys = f.CreateGauge("useroverlay_cluster_key_generation", "Generation of the newest network-encryption key this node holds (one more per rotation).");
        var clusterNodes = f.CreateGauge("useroverlay_cluster_nodes", "Nodes in the cluster, as this node knows them.");
        var controlPort = f.CreateCounter("useroverlay_cluster_control_port_events_total", "A manager's control port (2377): requests refused by reason (no_certificate, bad_token, …) and joins.", "reason");
        var operatorMetrics = OperatorMetrics.Create(f, router.Router);

        DnsMetrics.Register(f, registry, dns);
        registry.AddBeforeCollectCallback(() =>
        {
            var s = status();
            foreach (var n in s.Networks)
            {
                string vni = n.Vni.ToString(System.Globalization.CultureInfo.InvariantCulture);
                frames.WithLabels(n.Name, vni, "tx").IncTo(n.Counters.TxFrames);
                frames.WithLabels(n.Name, vni, "rx").IncTo(n.Counters.RxFrames);
                bytes.WithLabels(n.Name, vni, "tx").IncTo(n.Counters.TxBytes);
                bytes.WithLabels(n.Name, vni, "rx").IncTo(n.Counters.RxBytes);
                sent.WithLabels(n.Name, vni).IncTo(n.Counters.EncapsulatedDatagrams);
                delivered.WithLabels(n.Name, vni).IncTo(n.Counters.DeliveredFrames);
                flooded.WithLabels(n.Name, vni).IncTo(n.Counters.FloodedFrames);
                proxied.WithLabels(n.Name, vni).IncTo(n.Counters.ProxyArpReplies);
                unanswered.WithLabels(n.Name, vni).IncTo(n.Counters.FdbUnansweredRemoved);
                foreach (var (reason, v) in n.Counters.Drops) drops.WithLabels(n.Name, reason).IncTo(v);
                foreach (var src in new[] { "local", "static", "learned", "gossip" })
                    fdb.WithLabels(n.Name, src).Set(n.Fdb.Count(e => e.Source == src));
            }
            foreach (var (reason, v) in s.Drops) drops.WithLabels("", reason).IncTo(v);
            alloc.IncTo(GC.GetTotalAllocatedBytes(precise: false));
            uptime.Set(s.UptimeSeconds);
            if (members() is { } m)
                foreach (var (state, count) in m.CountByState()) memberStates.WithLabels(state).Set(count);
            var c = cluster.Node.Status();
            clusterActive.Set(c.State == "active" ? 1 : 0);
            clusterConnected.Set(c.Connected == true ? 1 : 0);
            if (c.Revision is long revision) clusterRevision.Set(revision);
            if (c.KeyGeneration is long generation) clusterKeys.Set(generation);
            if (c.Nodes is int nodes) clusterNodes.Set(nodes);
            foreach (var (reason, v) in c.Refusals ?? new Dictionary<string, long>()) controlPort.WithLabels(reason).IncTo(v);
            operatorMetrics.Collect(s);
        });

        var server = new KestrelMetricServer(new KestrelMetricServerOptions
        {
            Hostname = listen.Address.ToString(),
            Port = (ushort)listen.Port,
            Registry = registry,
        });
        try
        {
            server.Start();
        }
        catch (Exception e) when (e is IOException or System.Net.Sockets.SocketException or InvalidOperationException)
        {
            server.Dispose();
            throw new RouterException(RouterErrorCode.PortInUse, $"cannot serve metrics on {listen}: {e.GetBaseException().Message}");
        }
        _server = server;
        return Task.CompletedTask;
    }

    /// <inheritdoc/>
    public Task StopAsync(CancellationToken cancellationToken)
    {
        Dispose();
        return Task.CompletedTask;
    }

    /// <inheritdoc/>
    public void Dispose() => Interlocked.Exchange(ref _server, null)?.Dispose();
}
