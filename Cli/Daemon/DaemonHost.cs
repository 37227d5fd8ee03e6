using System.Runtime.InteropServices;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Hosting.Systemd;
using Microsoft.Extensions.Logging;
using UserOverlay.Cli.Commands;

namespace UserOverlay.Cli.Daemon;

/// <summary>
/// The daemon's composition: <c>useroverlay up</c> on the generic host. Each part is a hosted
/// service; the host starts them in the order they are added here and stops them in reverse:
/// <code>
///   start: router (forwards) → gossip (announces this host) → networks (seeds the file's, restores the stored
///          ones and their endpoints) → cluster (resumes a membership: store, control port, agent) → control API
///          (answers) → metrics
///   stop:  metrics → control API → cluster → networks → gossip (leaves the cluster: others drop this host at once) → router (TAPs removed)
/// </code>
/// A new part of the daemon (cluster agent, Docker plugin, DNS) is one more hosted service added
/// here, at the place in that order where what it needs has started.
/// <para>
/// The host is built from <see cref="Host.CreateEmptyApplicationBuilder"/>: no appsettings files,
/// no environment configuration, no file watchers (a watcher on the working directory, / under
/// systemd, would watch every directory of the machine). Under systemd, or whenever NOTIFY_SOCKET
/// is set, <see cref="SystemdLifetime"/> sends READY=1 once every service has started and
/// STOPPING=1 when the stop begins; logs go to the console, in the journal's format under systemd.
/// </para>
/// </summary>
internal static class DaemonHost
{
    /// <summary>How long the stop may take in all (leaving the cluster takes at most 3 s of it).</summary>
    public static readonly TimeSpan ShutdownTimeout = TimeSpan.FromSeconds(15);

    /// <summary>Threads the pool keeps ready (see <see cref="RunAsync"/>).</summary>
    public const int MinPoolThreads = 128;

    /// <summary>Builds the host (nothing runs yet).</summary>
    public static IHost Build(DaemonOptions options)
    {
        var builder = Host.CreateEmptyApplicationBuilder(new HostApplicationBuilderSettings
        {
            ApplicationName = "useroverlay",
            ContentRootPath = AppContext.BaseDirectory,
        });
        bool systemd = SystemdHelpers.IsSystemdService();
        ConfigureLogging(builder.Logging, options.LogLevel, systemd);
        ConfigureLifetime(builder.Services, systemd);
        builder.Services.Configure<HostOptions>(o => o.ShutdownTimeout = ShutdownTimeout);
        builder.Services.AddSingleton(options);

        // The order of start (and, reversed, of stop).
        AddHostedSingleton<RouterService>(builder.Services);
        AddHostedSingleton<DnsService>(builder.Services); // the gateways' DNS responder: before anything attaches endpoints
        AddHostedSingleton<GossipService>(builder.Services); // runs with a gossip: section, or once the host is in a cluster
        AddHostedSingleton<NetworkService>(builder.Services);
        AddHostedSingleton<ClusterService>(builder.Services);
        AddHostedSingleton<Docker.DockerPluginServer>(builder.Services); // Docker's network and IPAM plugin (serves nothing with --docker-plugin=off)
        AddHostedSingleton<ControlServer>(builder.Services);
        if (options.Config.Metrics is not null) AddHostedSingleton<RouterMetrics>(builder.Services);
        return builder.Build();
    }

    /// <summary>
    /// Runs the daemon until SIGINT or SIGTERM. A part that fails to start stops the ones already
    /// started (nothing half made) and its exception propagates, for the caller to report.
    /// </summary>
    public static async Task<int> RunAsync(DaemonOptions options)
    {
        DescriptorLimit.RaiseToHard(); // one descriptor per endpoint and queue: the soft limit of a service (1,024) is too few
        // Attaches run one at a time under the network manager's lock, and one to a cluster network waits there for the
        // managers' answer (whose completion needs a pool thread): enough threads that a burst of concurrent attach
        // requests, each holding one while it waits for the lock, does not starve that answer.
        ThreadPool.GetMinThreads(out int workers, out int io);
        ThreadPool.SetMinThreads(Math.Max(workers, MinPoolThreads), io);
        using var host = Build(options);
        var lifetime = host.Services.GetRequiredService<IHostApplicationLifetime>();
        var log = host.Services.GetRequiredService<ILoggerFactory>().CreateLogger("useroverlay");
        // Whatever the lifetime (the systemd one handles SIGTERM only), both signals stop the host.
        using var sigint = PosixSignalRegistration.Create(PosixSignal.SIGINT, c => { c.Cancel = true; lifetime.StopApplication(); });
        using var sigterm = PosixSignalRegistration.Create(PosixSignal.SIGTERM, c => { c.Cancel = true; lifetime.StopApplication(); });
        try
        {
            await host.StartAsync().ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (lifetime.ApplicationStopping.IsCancellationRequested)
        {
            await host.StopAsync().ConfigureAwait(false); // a signal during the start: stop what started
            return ExitCodes.Ok;
        }
        catch
        {
            await host.StopAsync().ConfigureAwait(false);
            throw;
        }
        DaemonLog.Up(log, options.Name, ControlApi.SocketPath(options.Name),
            options.Config.Metrics is { } m ? $", metrics at http://{m}/metrics" : "");
        using var stopping = lifetime.ApplicationStopping.Register(() => DaemonLog.Stopping(log, options.Name));
        await host.WaitForShutdownAsync().ConfigureAwait(false);
        return ExitCodes.Ok;
    }

    private static void ConfigureLogging(ILoggingBuilder logging, LogLevel level, bool systemd)
    {
        logging.SetMinimumLevel(level);
        if (systemd)
        {
            // "<6>category[event] message": journald takes the priority from the prefix and stamps the time itself.
            logging.AddSystemdConsole();
        }
        else
        {
            logging.AddSimpleConsole(o =>
            {
                o.SingleLine = true;
                o.TimestampFormat = "HH:mm:ss.fff ";
                o.UseUtcTimestamp = true;
            });
        }
        logging.AddFilter("Microsoft", level > LogLevel.Warning ? level : LogLevel.Warning);
        // A part that fails to start is reported in one sentence by the command; the host would log it again, with its stack.
        logging.AddFilter("Microsoft.Extensions.Hosting", LogLevel.Critical);
    }

    /// <summary>
    /// systemd's lifetime (sd_notify READY=1 / STOPPING=1) when systemd started the process, or when
    /// NOTIFY_SOCKET is set as sd_notify(3) has it (a supervisor other than systemd, or a test);
    /// the console lifetime otherwise.
    /// </summary>
    private static void ConfigureLifetime(IServiceCollection services, bool systemd)
    {
        if (systemd)
        {
            services.AddSystemd();
        }
        else if (Environment.GetEnvironmentVariable("NOTIFY_SOCKET") is { Length: > 0 })
        {
            services.AddSingleton<ISystemdNotifier, SystemdNotifier>();
            services.AddSingleton<IHostLifetime, SystemdLifetime>();
        }
    }

    /// <summary>Adds <typeparamref name="T"/> as a singleton (so later services can use it) and as a hosted service.</summary>
    private static void AddHostedSingleton<[System.Diagnostics.CodeAnalysis.DynamicallyAccessedMembers(System.Diagnostics.CodeAnalysis.DynamicallyAccessedMemberTypes.PublicConstructors)] T>(IServiceCollection services)
        where T : class, IHostedService
    {
        services.AddSingleton<T>();
        services.AddHostedService(sp => sp.GetRequiredService<T>());
    }
}
