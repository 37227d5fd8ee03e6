using System.CommandLine;
using Microsoft.Extensions.Logging;
using UserOverlay.Cli.Config;
using UserOverlay.Cli.Daemon;
using UserOverlay.Router;

namespace UserOverlay.Cli.Commands;

/// <summary>
/// <c>useroverlay up (--config FILE | --underlay IP[:PORT]) [--name NAME] [--state-dir DIR] [--group GROUP]</c>: runs one host's daemon in the foreground until SIGINT or
/// SIGTERM. Checks what a person can fix (configuration, name, root) before anything starts; the daemon
/// itself is composed in <see cref="DaemonHost"/>.
/// </summary>
internal static class UpCommand
{
    public static Command Create()
    {
        var config = new Option<FileInfo?>("--config", "-c") { Description = "The host's YAML configuration file (see README and samples/static/)." };
        var underlay = new Option<string?>("--underlay") { Description = "Without a configuration file: this host's underlay (VTEP) address, IP[:PORT] (port 4789 by default); the router starts with no networks and ESP-in-UDP ready, waiting for network create or a cluster.", HelpName = "IP[:PORT]" };
        var name = new Option<string?>("--name", "-n") { Description = "Name of this router (its control socket is /run/useroverlay/NAME.sock). Default: the config file's name without extension, or \"useroverlay\" without a file." };
        var logLevel = new Option<LogLevel>("--log-level") { Description = "Trace, Debug, Information, Warning, Error.", DefaultValueFactory = _ => LogLevel.Information };
        var stateDir = new Option<string?>("--state-dir") { Description = "Where networks, endpoints and workloads created at run time persist across restarts. Default: /var/lib/useroverlay/NAME." };
        var group = new Option<string?>("--group") { Description = "Group (name or gid) whose members may use the control socket (read-only unless root). Default: \"useroverlay\" if that group exists, else root." };
        var dockerPlugin = new Option<string?>("--docker-plugin")
        {
            Description = "Serve Docker's network and IPAM plugin (driver \"useroverlay\") on PATH, or off. Default: on, at /run/docker/plugins/useroverlay.sock, when /run/docker/plugins exists.",
            HelpName = "PATH|off",
            Arity = ArgumentArity.ZeroOrOne,
        };
        var cmd = new Command("up", "Run this host's router in the foreground until SIGINT or SIGTERM; TAP devices are removed on exit.") { config, underlay, name, logLevel, stateDir, group, dockerPlugin };
        cmd.Validators.Add(r =>
        {
            bool hasConfig = r.GetResult(config) is not null, hasUnderlay = r.GetResult(underlay) is not null;
            if (hasConfig == hasUnderlay)
                r.AddError(hasConfig ? "give --config or --underlay, not both (the file names the underlay address)" : "give --config FILE, or --underlay IP[:PORT] to run without a configuration file");
        });
        cmd.SetAction(p => Run(p.GetValue(config), p.GetValue(underlay), p.GetValue(name), p.GetValue(logLevel), p.GetValue(stateDir), p.GetValue(group),
            Docker.DockerPluginServer.SocketFor(p.GetValue(dockerPlugin), p.GetResult(dockerPlugin) is not null), p.GetResult(dockerPlugin) is null));
        return cmd;
    }

    /// <summary>The configuration <c>up --underlay IP[:PORT]</c> runs: that underlay, ESP-in-UDP ready, no networks.</summary>
    public static string WithoutFile(string underlay)
    {
        string address = underlay, port = "";
        int colon = underlay.LastIndexOf(':');
        if (colon > 0)
        {
            address = underlay[..colon];
            port = $", port: {underlay[(colon + 1)..]}";
        }
        return $"underlay: {{ address: \"{address}\"{port} }}\nencryption: {{ esp: udp }}\n";
    }

    private static int Run(FileInfo? configFile, string? underlay, string? name, LogLevel level, string? stateDir, string? group, string? dockerPlugin, bool dockerPluginDefaulted)
    {
        try
        {
            if (!OperatingSystem.IsLinux())
                throw new RouterException(RouterErrorCode.PlatformNotSupported, "useroverlay runs on Linux only (TAP devices and network namespaces)");
            var config = configFile is not null ? ConfigLoader.Load(configFile.FullName) : ConfigLoader.Parse(WithoutFile(underlay!), "--underlay");
            name ??= configFile is not null ? Path.GetFileNameWithoutExtension(configFile.Name) : "useroverlay";
            if (!ControlApi.IsValidName(name))
                throw new RouterException(RouterErrorCode.InvalidOptions, $"'{name}' is not a usable router name (letters, digits, '-', '_', '.'; at most 64)");
            if (!LinuxPlatform.IsRoot)
                throw new RouterException(RouterErrorCode.PermissionDenied,
                    "useroverlay up needs root: it creates TAP devices inside network namespaces and binds the data path (run it with sudo)");
            SocketAccess.ResolveGroup(group); // an unknown --group is a usage error, found before anything starts
            var options = new DaemonOptions(config, name, level) { Group = group, DockerPluginSocket = dockerPlugin, DockerPluginDefaulted = dockerPluginDefaulted };
            if (stateDir is not null) options = options with { StateDirectory = Path.GetFullPath(stateDir) };
            return DaemonHost.RunAsync(options).GetAwaiter().GetResult();
        }
        catch (Exception e)
        {
            return ExitCodes.Report(e);
        }
    }
}
