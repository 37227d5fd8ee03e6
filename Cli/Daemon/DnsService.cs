using System.Collections.Concurrent;
using System.Net;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using UserOverlay.Control.Networks;
using UserOverlay.Dns;
using UserOverlay.Router;

namespace UserOverlay.Cli.Daemon;

/// <summary>
/// Names (DNS) as a hosted service, started right after the router: the <see cref="DnsResponder"/> becomes the router's
/// gateway handler, so every network with a gateway answers DNS at the gateway's address, port 53. Names come from
/// this host's endpoints (the data plane tells it on attach and detach: the workload's name and aliases), and from other
/// hosts' endpoints through gossip (<see cref="Names"/> is the gossip agent's name sink), so a name comes and goes with
/// its FDB entry. Upstreams: <c>dns.upstream</c>, else the nameservers of /etc/resolv.conf as the daemon sees it.
/// With <c>dns: { enabled: false }</c> nothing is answered (frames to port 53 are counted gateway_unhandled).
/// </summary>
internal sealed class DnsService(DaemonOptions options, RouterService router, ILoggerFactory loggers) : IHostedService, IDisposable
{
    private readonly ConcurrentDictionary<(string Network, ulong Mac), IReadOnlyList<string>> _local = new();
    private DnsResponder? _responder;

    /// <summary>The name table (fed whether or not the responder runs).</summary>
    public NameRegistry Names { get; } = new();

    /// <summary>The responder, or null (disabled, or not started).</summary>
    public DnsResponder? Responder => Volatile.Read(ref _responder);

    /// <summary>The names of an endpoint on its network: the workload's name, then its aliases.</summary>
    public static IReadOnlyList<string> NamesOf(EndpointRecord endpoint) => [endpoint.Name, .. endpoint.Aliases];

    /// <summary>The names of a local endpoint, as the gossip agent publishes them (null: none known).</summary>
    public IReadOnlyList<string>? LocalNamesOf(LocalEndpointInfo e) => _local.TryGetValue((e.Network, e.Mac.Value), out var n) ? n : null;

    /// <inheritdoc/>
    public Task StartAsync(CancellationToken cancellationToken)
    {
        var config = options.Config.Dns;
        if (!config.Enabled) return Task.CompletedTask;
        IReadOnlyList<IPEndPoint> upstream = config.Upstream ?? ResolvConf();
        var responder = new DnsResponder(Names, router.Router.InjectFrame, new DnsResponderOptions { Upstreams = upstream }, loggers.CreateLogger("useroverlay.dns"));
        foreach (var n in router.Router.Networks) responder.SetNetwork(n.Name, n.Subnet.Network, n.Subnet.Length, n.Internal);
        _responder = responder;
        router.Router.GatewayHandler = responder;
        return Task.CompletedTask;
    }

    private static List<IPEndPoint> ResolvConf()
    {
        try { return Config.DnsConfig.ParseResolvConf(File.ReadAllText("/etc/resolv.conf")); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { return []; }
    }

    /// <summary>A network is served (created, or restored at start).</summary>
    public void NetworkAdded(NetworkDefinition network) =>
        Responder?.SetNetwork(network.Name, network.Subnet.Network, network.Subnet.Length, network.Internal);

    /// <summary>A network is no longer served: its names go.</summary>
    public void NetworkRemoved(NetworkDefinition network)
    {
        foreach (var key in _local.Keys.Where(k => k.Network == network.Name).ToList()) _local.TryRemove(key, out _);
        Names.RemoveNetwork(network.Name);
        Responder?.RemoveNetwork(network.Name);
    }

    /// <summary>A local endpoint is attached: its names answer on its network.</summary>
    public IReadOnlyList<string> EndpointAttached(NetworkDefinition network, EndpointRecord endpoint)
    {
        var names = NamesOf(endpoint);
        _local[(network.Name, endpoint.Mac.Value)] = names;
        Names.SetNames(network.Name, endpoint.Mac, endpoint.Address, names);
        return names;
    }

    /// <summary>A local endpoint is detached: its names go at once.</summary>
    public void EndpointDetached(NetworkDefinition network, EndpointRecord endpoint)
    {
        _local.TryRemove((network.Name, endpoint.Mac.Value), out _);
        Names.RemoveNames(network.Name, endpoint.Mac);
    }

    /// <inheritdoc/>
    public Task StopAsync(CancellationToken cancellationToken)
    {
        Dispose();
        return Task.CompletedTask;
    }

    /// <inheritdoc/>
    public void Dispose()
    {
        if (Interlocked.Exchange(ref _responder, null) is not { } r) return;
        try { router.Router.GatewayHandler = null; }
        catch (InvalidOperationException) { } // the router never started
        r.Dispose();
    }
}
