using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using UserOverlay.Control.Gossip;
using UserOverlay.Membership;

namespace UserOverlay.Cli.Daemon;

/// <summary>
/// Gossip as a hosted service: with a <c>gossip:</c> section it starts the <see cref="GossipAgent"/> on the running
/// router at once, publishing its endpoints; without one it starts nothing, and the cluster service starts it when
/// the host joins a cluster (<see cref="StartForClusterAsync"/>: the cluster's key, its nodes as seeds), and stops it
/// when the host leaves. On stop, it leaves the gossip cluster (others record this host as left and drop its
/// endpoints at once, instead of waiting for failure detection) before the router stops.
/// </summary>
internal sealed class GossipService(DaemonOptions options, RouterService router, ILoggerFactory loggers, DnsService dns) : IHostedService, IAsyncDisposable
{
    /// <summary>How long leaving the cluster may take before the stop goes on without it.</summary>
    public static readonly TimeSpan LeaveTimeout = TimeSpan.FromSeconds(3);

    private readonly SemaphoreSlim _gate = new(1, 1);
    private GossipAgent? _agent;

    /// <summary>The running agent, or null (static mode, or a host not in a cluster yet).</summary>
    public GossipAgent? Current => Volatile.Read(ref _agent);

    /// <summary>The running agent.</summary>
    public GossipAgent Agent => Current ?? throw new InvalidOperationException("gossip has not started");

    /// <summary>Whether the configuration file asks for gossip (then the cluster does not start or stop it).</summary>
    public bool Configured => options.Config.Gossip is not null;

    /// <inheritdoc/>
    public async Task StartAsync(CancellationToken cancellationToken)
    {
        if (options.Config.Gossip is not { } config) return;
        _agent = await GossipAgent.StartAsync(
            WithNames(GossipAgentOptions.ForRouter(router.Router, config.ToMembershipOptions(options.Name), config.Join)), loggers, cancellationToken).ConfigureAwait(false);
    }

    // Names travel with the endpoint records: other hosts' into the DNS table, this host's published with theirs.
    private GossipAgentOptions WithNames(GossipAgentOptions o) => o with { NameSink = dns.Names, LocalNames = dns.LocalNamesOf };

    /// <summary>
    /// Starts gossip for a cluster (the configuration has no <c>gossip:</c> section): <paramref name="membership"/> carries
    /// the node's name, bind address and the cluster's keys; <paramref name="seeds"/> are the other nodes; the networks
    /// are those the host serves now (later ones join through the data plane). Does nothing when gossip runs already.
    /// </summary>
    public async Task StartForClusterAsync(MembershipOptions membership, IReadOnlyList<string> seeds, IReadOnlyList<GossipNetwork> networks, CancellationToken cancellationToken)
    {
        await _gate.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            if (Current is not null) return;
            var o = WithNames(GossipAgentOptions.ForRouter(router.Router, membership, seeds)) with { Networks = networks };
            Volatile.Write(ref _agent, await GossipAgent.StartAsync(o, loggers, cancellationToken).ConfigureAwait(false));
        }
        finally { _gate.Release(); }
    }

    /// <summary>Leaves gossip and stops it (the host left its cluster); not for a <c>gossip:</c> section's agent.</summary>
    public async Task StopForClusterAsync()
    {
        if (Configured) return;
        await _gate.WaitAsync().ConfigureAwait(false);
        try { await StopAsync(CancellationToken.None).ConfigureAwait(false); }
        finally { _gate.Release(); }
    }

    /// <inheritdoc/>
    public async Task StopAsync(CancellationToken cancellationToken)
    {
        if (Current is not { } agent) return;
        await agent.LeaveAsync(LeaveTimeout).ConfigureAwait(false);
        await DisposeAsync().ConfigureAwait(false);
    }

    /// <inheritdoc/>
    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _agent, null) is { } agent) await agent.DisposeAsync().ConfigureAwait(false);
    }
}
