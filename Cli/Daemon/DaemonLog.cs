using Microsoft.Extensions.Logging;

namespace UserOverlay.Cli.Daemon;

/// <summary>The daemon's own log events (category useroverlay; IDs 1–99).</summary>
internal static partial class DaemonLog
{
    [LoggerMessage(1, LogLevel.Information, "Router '{Name}' is up; control socket {Socket}{Metrics}. Stop with Ctrl-C or SIGTERM.")]
    public static partial void Up(ILogger logger, string name, string socket, string metrics);

    [LoggerMessage(2, LogLevel.Information, "Stopping router '{Name}'")]
    public static partial void Stopping(ILogger logger, string name);

    [LoggerMessage(3, LogLevel.Warning, "Released endpoint '{Endpoint}' of network '{Network}' ({Address}) instead of attaching it again: {Reason}")]
    public static partial void EndpointReleased(ILogger logger, string endpoint, string network, string address, string reason);

    [LoggerMessage(4, LogLevel.Warning, "Released workload '{Name}': {Reason}")]
    public static partial void WorkloadReleased(ILogger logger, string name, string reason);

    [LoggerMessage(5, LogLevel.Information, "Removed workload '{Name}': {Reason}")]
    public static partial void WorkloadRemoved(ILogger logger, string name, string reason);

    [LoggerMessage(6, LogLevel.Warning, "Checking workload clients failed: {Message}")]
    public static partial void WorkloadSweepFailed(ILogger logger, string message);

    // Names (DNS), issue 17: ids 1700–1709.
    [LoggerMessage(1700, LogLevel.Warning, "Workload '{Name}' gets no resolv.conf pointing at its gateways: {Message}")]
    public static partial void WorkloadResolvConfFailed(ILogger logger, string name, string message);
}
