using System.Net;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using UserOverlay.Cluster.Node;
using UserOverlay.Control.Gossip;
using UserOverlay.Control.Networks;
using UserOverlay.Crypto;
using UserOverlay.Membership;
using UserOverlay.Router;

namespace UserOverlay.Cli.Daemon;

/// <summary>
/// The daemon's host for <see cref="ClusterNode"/> (the cluster library's node: swarm init/join/leave, its parts), as a
/// hosted service that starts after the network service and before the control API — so a recorded membership resumes
/// before the socket answers — and stops before the network service. It only adapts the daemon's parts to
/// <see cref="IClusterHost"/>: the router's name, state directory, underlay and key source, the network manager, and
/// gossip (<see cref="GossipService"/>).
/// </summary>
internal sealed class ClusterService(DaemonOptions options, RouterService router, NetworkService networks, GossipService gossip, ILoggerFactory loggers)
    : IHostedService, IAsyncDisposable, IClusterHost
{
    private ClusterNode? _node;

    /// <summary>The node (after start).</summary>
    public ClusterNode Node => _node ?? throw new InvalidOperationException("the cluster service has not started");

    /// <inheritdoc/>
    public async Task StartAsync(CancellationToken cancellationToken)
    {
        _node = new ClusterNode(this);
        await _node.StartAsync(cancellationToken).ConfigureAwait(false);
    }

    /// <inheritdoc/>
    public async Task StopAsync(CancellationToken cancellationToken)
    {
        if (_node is { } node) await node.StopAsync(cancellationToken).ConfigureAwait(false);
    }

    /// <inheritdoc/>
    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _node, null) is { } node) await node.DisposeAsync().ConfigureAwait(false);
    }

    string IClusterHost.Name => options.Name;
    string IClusterHost.StateDirectory => options.StateDirectory;
    IPAddress IClusterHost.UnderlayAddress => router.Router.Options.Underlay.IPAddress;
    int IClusterHost.DataPathPort => router.Router.Options.Underlay.Port;
    int IClusterHost.MaxMtu => router.Router.Options.UnderlayMtu - Constants.VxlanOverhead;
    NetworkManager IClusterHost.Networks => networks.Manager;
    StaticNetworkKeySource? IClusterHost.NetworkKeys => router.Router.Options.Encryption?.Keys as StaticNetworkKeySource;
    bool IClusterHost.GossipConfigured => gossip.Configured;
    GossipAgent? IClusterHost.Gossip => gossip.Current;
    ILoggerFactory IClusterHost.Loggers => loggers;

    Task IClusterHost.StartGossipAsync(MembershipOptions membership, IReadOnlyList<string> seeds, IReadOnlyList<GossipNetwork> gossipNetworks, CancellationToken cancellationToken) =>
        gossip.StartForClusterAsync(membership, seeds, gossipNetworks, cancellationToken);

    Task IClusterHost.StopGossipAsync() => gossip.StopForClusterAsync();
}
