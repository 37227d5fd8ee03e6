using System.Net;
using Microsoft.Extensions.Logging;
using UserOverlay.Control.Gossip;
using UserOverlay.Control.Networks;
using UserOverlay.Crypto;
using UserOverlay.Membership;

namespace UserOverlay.Cluster.Node;

/// <summary>
/// What a <see cref="ClusterNode"/> needs of the host it runs on: its name and state directory, its router's data path
/// (underlay address and port, the largest inner MTU, the key source of its encrypted networks), its networks
/// (<see cref="NetworkManager"/>) and its gossip. The daemon implements it over its router and services; an embedder
/// or a test over its own.
/// </summary>
public interface IClusterHost
{
    /// <summary>The node's name in the cluster (the daemon's router name).</summary>
    string Name { get; }

    /// <summary>The host's state directory; the cluster's state is kept in its <c>cluster/</c> subdirectory.</summary>
    string StateDirectory { get; }

    /// <summary>The router's underlay (data path) address.</summary>
    IPAddress UnderlayAddress { get; }

    /// <summary>The router's VXLAN port; a cluster's data path port must be it.</summary>
    int DataPathPort { get; }

    /// <summary>The largest inner MTU the data path carries (a network's MTU is checked against it).</summary>
    int MaxMtu { get; }

    /// <summary>The host's networks and endpoints.</summary>
    NetworkManager Networks { get; }

    /// <summary>The key source of the router's encrypted networks, or null when the router has no ESP (then the cluster's encrypted networks cannot be served here).</summary>
    StaticNetworkKeySource? NetworkKeys { get; }

    /// <summary>Whether gossip runs from the host's own configuration (then the cluster neither starts nor stops it, nor changes its keys).</summary>
    bool GossipConfigured { get; }

    /// <summary>The running gossip agent, or null.</summary>
    GossipAgent? Gossip { get; }

    /// <summary>Starts gossip with the cluster's settings (name, bind address, keys) when none runs.</summary>
    Task StartGossipAsync(MembershipOptions membership, IReadOnlyList<string> seeds, IReadOnlyList<GossipNetwork> networks, CancellationToken cancellationToken);

    /// <summary>Leaves and stops the gossip the cluster started.</summary>
    Task StopGossipAsync();

    /// <summary>Loggers.</summary>
    ILoggerFactory Loggers { get; }
}
