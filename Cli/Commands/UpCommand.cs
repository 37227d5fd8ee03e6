using System.CommandLine;
using System.Runtime.InteropServices;
using Microsoft.Extensions.Logging;
using UserOverlay.Cli.Config;
using UserOverlay.Cli.Daemon;
using UserOverlay.Router;

namespace UserOverlay.Cli.Commands;

/// <summary><c>useroverlay up --config FILE [--name NAME]</c>: runs one host's router in the foreground until SIGINT or SIGTERM.</summary>
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
            return RunRouter(config, name, level).GetAwaiter().GetResult();
        }
        catch (Exception e)
        {
            return ExitCodes.Report(e);
        }
    }

    /// <summary>
    /// Encrypted networks persist their ESP sequence reservations, so a restart never reuses a nonce:
    /// STATE_DIR/NAME/esp-sequence (directory mode 0700).
    /// </summary>
    private static RouterOptions WithSequenceStore(HostConfig config, string name)
    {
        if (config.Router.Encryption is not { } enc) return config.Router;
        string dir = Path.Combine(config.EspStateDirectory, name);
        try
        {
            Directory.CreateDirectory(dir, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
            var store = new UserOverlay.Crypto.FileSequenceStore(Path.Combine(dir, "esp-sequence"));
            return config.Router with { Encryption = enc with { Esp = enc.Esp with { SequenceStore = store } } };
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or InvalidDataException or FormatException)
        {
            throw new RouterException(RouterErrorCode.SystemError,
                $"cannot use the ESP state directory {dir} (encryption.state_dir): {e.Message}");
        }
    }

    private static async Task<int> RunRouter(HostConfig config, string name, LogLevel level)
    {
        using var loggers = ExitCodes.CreateLoggers(level);
        var log = loggers.CreateLogger("useroverlay");
        using var stop = new ManualResetEventSlim();
        using var sigint = PosixSignalRegistration.Create(PosixSignal.SIGINT, c => { c.Cancel = true; stop.Set(); });
        using var sigterm = PosixSignalRegistration.Create(PosixSignal.SIGTERM, c => { c.Cancel = true; stop.Set(); });

        using var router = OverlayRouter.Start(WithSequenceStore(config, name), loggerFactory: loggers);
        // Gossip mode (Cli/Gossip/): the endpoint table feeds the router; disposed (after leaving) before the router stops.
        await using var gossip = config.Gossip is { } gc ? await Gossip.GossipAgent.StartAsync(gc, name, router, loggers) : null;
        var version = new VersionInfo(ExitCodes.Version, name, Environment.ProcessId, config.File);
        await using var control = await ControlServer.StartAsync(name, router.GetStatus, version, loggers, gossip is null ? null : gossip.GetMembers,
            config.Router.Encryption is null ? null : () => new SaResponse(SaCommand.Warning, router.DescribeSecurityAssociations()));
        RouterMetrics? metrics = null;
        try
        {
            if (config.Metrics is { } m)
            {
                try { metrics = new RouterMetrics(m, router.GetStatus, gossip is null ? null : gossip.GetMembers); }
                catch (Exception e) when (e is IOException or System.Net.Sockets.SocketException or InvalidOperationException)
                {
                    throw new RouterException(RouterErrorCode.PortInUse, $"cannot serve metrics on {m}: {e.GetBaseException().Message}");
                }
            }
            log.LogInformation("Router '{Name}' is up; control socket {Socket}{Metrics}. Stop with Ctrl-C or SIGTERM.",
                name, ControlApi.SocketPath(name), metrics is null ? "" : $", metrics at http://{config.Metrics}/metrics");
            stop.Wait();
            log.LogInformation("Stopping router '{Name}'", name);
            if (gossip is not null) await gossip.LeaveAsync(TimeSpan.FromSeconds(3)); // others drop our endpoints now, not after failure detection
        }
        finally
        {
            metrics?.Dispose();
        }
        return ExitCodes.Ok;
    }
}
