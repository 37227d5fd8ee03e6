using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using UserOverlay.Control.Gossip;

namespace UserOverlay.Cli.Daemon;

/// <summary>
/// Gossip mode as a hosted service (only with a <c>gossip:</c> section): starts the
/// <see cref="GossipAgent"/> on the running router, publishing its endpoints; on stop, leaves the
/// cluster (others record this host as left and drop its endpoints at once, instead of waiting for
/// failure detection) before the router stops.
/// </summary>
internal sealed class GossipService(DaemonOptions options, RouterService router, ILoggerFactory loggers) : IHostedService, IAsyncDisposable
{
    /// <summary>How long leaving the cluster may take before the stop goes on without it.</summary>
    public static readonly TimeSpan LeaveTimeout = TimeSpan.FromSeconds(3);

    private GossipAgent? _agent;

    /// <summary>The running agent.</summary>
    public GossipAgent Agent => _agent ?? throw new InvalidOperationException("gossip has not started");

    /// <inheritdoc/>
    public async Task StartAsync(CancellationToken cancellationToken)
    {
        var config = options.Config.Gossip ?? throw new InvalidOperationException("the configuration has no gossip: section");
        _agent = await GossipAgent.StartAsync(
            GossipAgentOptions.ForRouter(router.Router, config.ToMembershipOptions(options.Name), config.Join), loggers, cancellationToken).ConfigureAwait(false);
    }

    /// <inheritdoc/>
    public async Task StopAsync(CancellationToken cancellationToken)
    {
        if (_agent is not { } agent) return;
        await agent.LeaveAsync(LeaveTimeout).ConfigureAwait(false);
        await DisposeAsync().ConfigureAwait(false);
    }

    /// <inheritdoc/>
    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _agent, null) is { } agent) await agent.DisposeAsync().ConfigureAwait(false);
    }
}
