using Microsoft.Extensions.Logging;
using UserOverlay.Cli.Config;

namespace UserOverlay.Cli.Daemon;

/// <summary>What <c>useroverlay up</c> runs: the loaded configuration, the router's name and the log level.</summary>
/// <param name="Config">The host's configuration, loaded and validated.</param>
/// <param name="Name">The router's name (its control socket is /run/useroverlay/NAME.sock).</param>
/// <param name="LogLevel">The least severe level logged (<c>--log-level</c>).</param>
internal sealed record DaemonOptions(HostConfig Config, string Name, LogLevel LogLevel)
{
    /// <summary>Where networks, endpoints and workloads created at run time persist (<c>--state-dir</c>; default /var/lib/useroverlay/NAME).</summary>
    public string StateDirectory { get; init; } = DefaultStateDirectory(Name);

    /// <summary>The control socket's group (<c>--group</c>: a name or gid); null for <see cref="SocketAccess.DefaultGroup"/> if it exists, else root.</summary>
    public string? Group { get; init; }

    /// <summary>Docker's plugin socket this daemon serves (<c>--docker-plugin</c>; <see cref="Docker.DockerPluginServer.SocketFor"/>), or null for none.</summary>
    public string? DockerPluginSocket { get; init; }

    /// <summary>True when <see cref="DockerPluginSocket"/> is the default (no <c>--docker-plugin</c>): another router serving it then only turns this one's off.</summary>
    public bool DockerPluginDefaulted { get; init; }

    /// <summary>/var/lib/useroverlay/NAME.</summary>
    public static string DefaultStateDirectory(string name) => Path.Combine("/var/lib/useroverlay", name);
}
