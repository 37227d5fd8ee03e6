using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using UserOverlay.Cluster.Security;

namespace UserOverlay.Cluster.Transport;

/// <summary>
/// Keeps a node's certificate fresh: at <see cref="NodeIdentity.RenewAt"/> (a random point in 50–80 % of its life)
/// it renews through the first manager that answers, saves the new identity (if given a directory) and hands it to
/// <see cref="Renewed"/> (the daemon swaps it into its clients and, on a manager, <see cref="ClusterServer.UpdateIdentity"/>).
/// A failed renewal is retried with a doubling delay (from <see cref="RetryDelay"/> up to <see cref="MaxRetryDelay"/>);
/// the old certificate stays in use meanwhile. Either call <see cref="RunAsync"/> once (a background loop), or call
/// <see cref="RenewIfDueAsync"/> from a timer of your own. Thread-safety: one loop or one caller at a time.
/// </summary>
/// <param name="client">The client to renew with.</param>
/// <param name="identity">The current identity.</param>
/// <param name="managers">The managers' addresses to try, in order (asked at each renewal, so it can follow the cluster).</param>
/// <param name="directory">Where the identity is saved (<see cref="NodeIdentity.Save"/>), or null not to save.</param>
/// <param name="time">The clock.</param>
/// <param name="logger">Where renewals and failures are logged.</param>
public sealed class CertificateRenewer(ClusterClient client, NodeIdentity identity, Func<IReadOnlyList<string>> managers,
    string? directory = null, TimeProvider? time = null, ILogger? logger = null)
{
    private readonly TimeProvider _time = time ?? TimeProvider.System;
    private readonly ILogger _log = logger ?? NullLogger.Instance;
    private NodeIdentity _current = identity ?? throw new ArgumentNullException(nameof(identity));

    /// <summary>The identity in use (the newest renewed).</summary>
    public NodeIdentity Current => Volatile.Read(ref _current);

    /// <summary>Called with each new identity, after it is saved. The previous one is not disposed (connections may still use it).</summary>
    public Func<NodeIdentity, Task>? Renewed { get; init; }

    /// <summary>The first delay after a failed renewal.</summary>
    public TimeSpan RetryDelay { get; init; } = TimeSpan.FromSeconds(5);

    /// <summary>The longest delay between attempts.</summary>
    public TimeSpan MaxRetryDelay { get; init; } = TimeSpan.FromMinutes(5);

    /// <summary>The last failure (cleared by a success), for status output.</summary>
    public ClusterClientException? LastError { get; private set; }

    /// <summary>Renews now if <see cref="NodeIdentity.RenewAt"/> has come; true when it renewed. Throws the last manager's error when all failed.</summary>
    public async Task<bool> RenewIfDueAsync(CancellationToken cancellationToken = default)
    {
        var current = Current;
        if (_time.GetUtcNow() < current.RenewAt) return false;
        await RenewNowAsync(cancellationToken).ConfigureAwait(false);
        return true;
    }

    /// <summary>Renews now, whatever the time (after a promotion, say). Throws the last manager's error when all failed.</summary>
    public async Task<NodeIdentity> RenewNowAsync(CancellationToken cancellationToken = default)
    {
        var current = Current;
        var list = managers();
        if (list.Count == 0)
            throw LastError = new ClusterClientException("unreachable", "no manager is known to renew the node's certificate with");
        ClusterClientException? last = null;
        foreach (string manager in list)
        {
            try
            {
                var next = await client.RenewAsync(current, manager, cancellationToken).ConfigureAwait(false);
                if (directory is not null) next.Save(directory);
                Volatile.Write(ref _current, next);
                LastError = null;
                _log.LogInformation("cluster certificate of node {NodeId} renewed through {Manager} as {Role}, valid until {NotAfter:u}",
                    next.NodeId, manager, next.Role, next.NotAfter);
                if (Renewed is { } renewed) await renewed(next).ConfigureAwait(false);
                return next;
            }
            catch (ClusterClientException e)
            {
                last = e;
                _log.LogWarning("renewing the cluster certificate through {Manager} failed: {Message}", manager, e.Message);
            }
        }
        throw LastError = last!;
    }

    /// <summary>Renews at each <see cref="NodeIdentity.RenewAt"/> until <paramref name="cancellationToken"/> is cancelled.</summary>
    public async Task RunAsync(CancellationToken cancellationToken)
    {
        var retry = RetryDelay;
        while (!cancellationToken.IsCancellationRequested)
        {
            var wait = Current.RenewAt - _time.GetUtcNow();
            try
            {
                if (wait > TimeSpan.Zero) await Task.Delay(Min(wait, TimeSpan.FromHours(1)), _time, cancellationToken).ConfigureAwait(false);
                if (await RenewIfDueAsync(cancellationToken).ConfigureAwait(false)) retry = RetryDelay;
            }
            catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested) { return; }
            catch (ClusterClientException)
            {
                try { await Task.Delay(retry, _time, cancellationToken).ConfigureAwait(false); }
                catch (OperationCanceledException) { return; }
                retry = Min(retry * 2, MaxRetryDelay);
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                LastError = new ClusterClientException("storage_failed", $"the renewed certificate could not be saved in {directory}: {e.Message}", e);
                _log.LogError(e, "saving the renewed cluster certificate in {Directory} failed", directory);
                try { await Task.Delay(retry, _time, cancellationToken).ConfigureAwait(false); }
                catch (OperationCanceledException) { return; }
                retry = Min(retry * 2, MaxRetryDelay);
            }
        }
    }

    private static TimeSpan Min(TimeSpan a, TimeSpan b) => a < b ? a : b;
}
