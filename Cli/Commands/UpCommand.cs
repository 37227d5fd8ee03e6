using System.CommandLine;
using Microsoft.Extensions.Logging;
using UserOverlay.Cli.Config;
using UserOverlay.Cli.Daemon;
using UserOverlay.Router;

namespace UserOverlay.Cli.Commands;

/// <summary>
/// <c>useroverlay up --config FILE [--name NAME]</c>: runs one host's daemon in the foreground until SIGINT or
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
        var cmd = new Command("up", "Run this host's router in the foreground until SIGINT or SIGTERM; TAP devices are removed on exit.") { config, name, logLevel };
        cmd.SetAction(p => Run(p.GetValue(config)!, p.GetValue(name), p.GetValue(logLevel)));
        return cmd;
    }

    private static int Run(FileInfo configFile, string? name, LogLevel level)
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
            return DaemonHost.RunAsync(new DaemonOptions(config, name, level)).GetAwaiter().GetResult();
        }
        catch (Exception e)
        {
            return ExitCodes.Report(e);
        }
    }
}
