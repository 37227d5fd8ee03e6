using System.CommandLine;
using Microsoft.Extensions.Logging;
using UserOverlay.Cli.Config;
using UserOverlay.Cli.Daemon;
using UserOverlay.Router;

namespace UserOverlay.Cli.Commands;

/// <summary>
/// <c>useroverlay up --config FILE [--name NAME] [--state-dir DIR] [--group GROUP]</c>: runs one host's daemon in the foreground until SIGINT or
/// SIGTERM. Checks what a person can fix (configuration, name, root) before anything starts; the daemon
/// itself is composed in <see cref="DaemonHost"/>.
/// </summary>
internal static class UpCommand
{
    public static Command Create()
    {
        var config = new Option<FileInfo>("--config", "-c") { Description = "The host's YAML configuration file (see README and samples/static/).", Required = true };
        var name = new Option<string?>("--name", "-n") { Description = "Name of this router (its control socket is /run/useroverlay/NAME.sock). Default: the config file's name without extension." };
        var logLevel = new Option<LogLevel>("--log-level") { Description = "Trace, Debug, Information, Warning, Error.", DefaultValueFactory = _ => LogLevel.Information };
        var stateDir = new Option<string?>("--state-dir") { Description = "Where networks, endpoints and workloads created at run time persist across restarts. Default: /var/lib/useroverlay/NAME." };
        var group = new Option<string?>("--group") { Description = "Group (name or gid) whose members may use the control socket (read-only unless root). Default: \"useroverlay\" if that group exists, else root." };
        var cmd = new Command("up", "Run this host's router in the foreground until SIGINT or SIGTERM; TAP devices are removed on exit.") { config, name, logLevel, stateDir, group };
        cmd.SetAction(p => Run(p.GetValue(config)!, p.GetValue(name), p.GetValue(logLevel), p.GetValue(stateDir), p.GetValue(group)));
        return cmd;
    }

    private static int Run(FileInfo configFile, string? name, LogLevel level, string? stateDir, string? group)
    {
        try
        {
            if (!OperatingSystem.IsLinux())
                throw new RouterException(RouterErrorCode.PlatformNotSupported, "useroverlay runs on Linux only (TAP devices and network namespaces)");
            var config = ConfigLoader.Load(configFile.FullName);
            name ??= Path.GetFileNameWithoutExtension(configFile.Name);
            if (!ControlApi.IsValidName(name))
                throw new RouterException(RouterErrorCode.InvalidOptions, $"'{name}' is not a usable router name (letters, digits, '-', '_', '.'; at most 64)");
            if (!LinuxPlatform.IsRoot)
                throw new RouterException(RouterErrorCode.PermissionDenied,
                    "useroverlay up needs root: it creates TAP devices inside network namespaces and binds the data path (run it with sudo)");
            SocketAccess.ResolveGroup(group); // an unknown --group is a usage error, found before anything starts
            var options = new DaemonOptions(config, name, level) { Group = group };
            if (stateDir is not null) options = options with { StateDirectory = Path.GetFullPath(stateDir) };
            return DaemonHost.RunAsync(options).GetAwaiter().GetResult();
        }
        catch (Exception e)
        {
            return ExitCodes.Report(e);
        }
    }
}
