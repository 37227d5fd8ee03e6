using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using UserOverlay.Control.Gossip;
using UserOverlay.Control.Networks;
using UserOverlay.Control.State;
using UserOverlay.Router;
using UserOverlay.Router.Netns;

namespace UserOverlay.Cli.Daemon;

/// <summary>
/// Networks, endpoints and workloads at run time, as a hosted service that starts after the router and gossip and
/// before the control API: it owns the <see cref="NetworkManager"/> over a <see cref="FileNetworkStore"/> in the state
/// directory (<c>up --state-dir</c>) and its data plane (<see cref="RouterDataPlane"/>: the router, and gossip). At start:
/// <list type="number">
/// <item>the stored state is read (a corrupt file stops the start, naming it);</item>
/// <item>the configuration file's networks and endpoints are seeded (<see cref="NetworkManager.Seed"/>: the file is
/// authoritative for what it names; the router was started from it, so they are served already);</item>
/// <item>networks created at run time are added to the router (and gossip), and endpoints attached at run time are
/// attached again with the same MAC and address where their namespace still exists; the others are released, each
/// logged (<see cref="NetworkManager.Resume"/>);</item>
/// <item>workloads are restored (<see cref="Workloads"/>).</item>
/// </list>
/// On stop nothing is undone: the state stays for the next start, and the router removes the TAPs when it stops.
/// </summary>
internal sealed class NetworkService(DaemonOptions options, RouterService router, ILoggerFactory loggers, GossipService gossip, DnsService dns)
    : IHostedService, IDisposable
{
    private readonly ILogger _log = loggers.CreateLogger("useroverlay");
    private NetworkManager? _manager;
    private Workloads? _workloads;

    /// <summary>The manager (after start).</summary>
    public NetworkManager Manager => _manager ?? throw new InvalidOperationException("the network service has not started");

    /// <summary>The workloads (after start).</summary>
    public Workloads Workloads => _workloads ?? throw new InvalidOperationException("the network service has not started");

    /// <inheritdoc/>
    public Task StartAsync(CancellationToken cancellationToken)
    {
        var config = options.Config;
        FileNetworkStore store;
        try { store = new FileNetworkStore(options.StateDirectory); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new RouterException(RouterErrorCode.SystemError, $"cannot use the state directory {options.StateDirectory} (--state-dir): {e.Message}");
        }
        var dataPlane = new RouterDataPlane(router.Router, () => gossip.Current, dns);
        try
        {
            var manager = new NetworkManager(store, dataPlane, new NetworkManagerOptions
            {
                MaxMtu = config.Router.UnderlayMtu - Constants.VxlanOverhead,
                // Each host's pool of a network is its own: an address another host's endpoint holds (gossip knows) is not taken here too.
                HeldElsewhere = (network, address) => gossip.Current?.IsRemoteAddress(network.Vni, address) == true,
            });
            var (networks, endpoints) = SeedOf(config.Router);
            manager.Seed(networks, endpoints);
            // The cluster's encrypted networks need their keys before they are served again.
            UserOverlay.Cluster.Node.ClusterNode.RestoreKeys(options.StateDirectory, manager.ListNetworks(), router.Router.Options.Encryption?.Keys as UserOverlay.Crypto.StaticNetworkKeySource);
            foreach (var r in manager.Resume(e => Namespaces.Exists(e.Netns) ? null : $"its namespace {e.Netns} is gone"))
                DaemonLog.EndpointReleased(_log, r.Endpoint.Name, r.Network, VtepEndpoint.FormatAddress(r.Endpoint.Address), r.Reason);
            SeedNames(manager);
            _manager = manager;
            _workloads = new Workloads(manager, options.StateDirectory, _log);
        }
        catch (ControlException e)
        {
            // One sentence for `up` to print (the state directory named), not a stack trace.
            throw new RouterException(RouterErrorCode.SystemError, $"cannot start from the state in {options.StateDirectory} and {config.File}: {e.Message}", e);
        }
        return Task.CompletedTask;
    }

    // The configuration file's networks and endpoints are served from the router's start, not through the data plane:
    // their names (and the subnets the responder needs) are told here, and gossiped with their records.
    private void SeedNames(NetworkManager manager)
    {
        foreach (var net in manager.ListNetworks().Where(n => n.FromConfig))
        {
            dns.NetworkAdded(net);
            foreach (var ep in manager.GetEndpoints(net.Id).Where(e => e.FromConfig))
            {
                var names = dns.EndpointAttached(net, ep);
                if (gossip.Current is { } g && router.Router.LocalEndpoints.FirstOrDefault(l => l.Network == net.Name && l.Mac == ep.Mac) is { } info)
                    g.PublishEndpoint(info, names);
            }
        }
    }

    /// <summary>The configuration file's networks and endpoints as requests to seed (the router's options, as loaded).</summary>
    public static (List<NetworkCreateRequest> Networks, List<EndpointAttachRequest> Endpoints) SeedOf(RouterOptions router) =>
        ([.. router.Networks.Select(n => new NetworkCreateRequest
        {
            Name = n.Name,
            Vni = n.Vni,
            Subnet = n.Subnet.ToString(),
            Gateway = n.Gateway is uint g ? VtepEndpoint.FormatAddress(g) : null,
            NoGateway = n.Gateway is null,
            Mtu = n.Mtu,
            Encrypted = n.Encrypted,
            Internal = n.Internal,
        })],
        [.. router.Endpoints.Select(e => new EndpointAttachRequest
        {
            Network = e.Network,
            Netns = e.Netns,
            Interface = e.Interface,
            Address = VtepEndpoint.FormatAddress(e.Address),
            Mac = e.EffectiveMac.ToString(),
        })]);

    /// <inheritdoc/>
    public Task StopAsync(CancellationToken cancellationToken)
    {
        Dispose();
        return Task.CompletedTask;
    }

    /// <inheritdoc/>
    public void Dispose() => Interlocked.Exchange(ref _workloads, null)?.Dispose();
}
