using Microsoft.Extensions.Logging;

namespace UserOverlay.Cli.Daemon;

/// <summary>The daemon's own log events (category useroverlay; IDs 1–99).</summary>
internal static partial class DaemonLog
{
    [LoggerMessage(1, LogLevel.Information, "Router '{Name}' is up; control socket {Socket}{Metrics}. Stop with Ctrl-C or SIGTERM.")]
    public static partial void Up(ILogger logger, string name, string socket, string metrics);

    [LoggerMessage(2, LogLevel.Information, "Stopping router '{Name}'")]
    public static partial void Stopping(ILogger logger, string name);
}
