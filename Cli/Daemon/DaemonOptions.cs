using Microsoft.Extensions.Logging;
using UserOverlay.Cli.Config;

namespace UserOverlay.Cli.Daemon;

/// <summary>What <c>useroverlay up</c> runs: the loaded configuration, the router's name and the log level.</summary>
/// <param name="Config">The host's configuration, loaded and validated.</param>
/// <param name="Name">The router's name (its control socket is /run/useroverlay/NAME.sock).</param>
/// <param name="LogLevel">The least severe level logged (<c>--log-level</c>).</param>
internal sealed record DaemonOptions(HostConfig Config, string Name, LogLevel LogLevel);
