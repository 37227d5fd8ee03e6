using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using UserOverlay.Cli.Commands;
using UserOverlay.Router;

namespace UserOverlay.Cli.Daemon;

/// <summary>
/// Serves the control API (<see cref="ControlApi"/>) on the router's Unix socket with Kestrel, as a
/// hosted service that starts after the router (and gossip), so the socket answers only once there
/// is a router to answer for. The socket's directory is created with mode 0700, so only root talks
/// to the router. Kestrel runs in a web application of its own, fed the daemon's loggers.
/// </summary>
internal sealed class ControlServer(DaemonOptions options, RouterService router, ILoggerFactory loggers, GossipService? gossip = null)
    : IHostedService, IAsyncDisposable
{
    private WebApplication? _app;
    private string? _path;

    /// <summary>Claims the socket path (refusing if a live router already owns it) and starts serving.</summary>
    public async Task StartAsync(CancellationToken cancellationToken)
    {
        string name = options.Name;
        var r = router.Router;
        Func<RouterStatus> status = r.GetStatus;
        var version = new VersionInfo(VersionCommand.Current, name, Environment.ProcessId, options.Config.File);
        Func<UserOverlay.Control.Gossip.MembersResponse>? members = gossip is null ? null : () => gossip.Agent.GetMembers();
        Func<SaResponse>? securityAssociations = options.Config.Router.Encryption is null ? null
            : () => new SaResponse(SaCommand.Warning, r.DescribeSecurityAssociations());

        Directory.CreateDirectory(ControlApi.SocketDirectory, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        File.SetUnixFileMode(ControlApi.SocketDirectory, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        string path = ControlApi.SocketPath(name);
        if (File.Exists(path))
        {
            if (ControlClient.IsLive(path))
                throw new RouterException(RouterErrorCode.SystemError,
                    $"a router named '{name}' is already running (control socket {path}); stop it first or choose another --name");
            File.Delete(path); // stale socket of a router that did not exit cleanly
        }

        // The empty builder, not the slim one: the slim builder reads appsettings.json from the working
        // directory with reload-on-change, which puts an inotify watch on every directory below it — started
        // from / (as a service is), ~20,000 watches and a thread woken by every file written anywhere on the
        // machine. The control API has no configuration to read.
        var builder = WebApplication.CreateEmptyBuilder(new WebApplicationOptions { ApplicationName = "useroverlay", ContentRootPath = AppContext.BaseDirectory });
        builder.Services.AddLogging();
        builder.Services.AddSingleton(loggers);
        builder.Services.AddRoutingCore();
        builder.WebHost.UseKestrelCore();
        builder.WebHost.ConfigureKestrel(k =>
        {
            k.ListenUnixSocket(path);
            k.AddServerHeader = false;
        });
        builder.Services.ConfigureHttpJsonOptions(o => o.SerializerOptions.TypeInfoResolverChain.Insert(0, ControlJson.Default));
        var app = builder.Build();
        app.MapGet("/_ping", () => Results.Text("OK"));
        app.MapGet("/v1/version", () => Results.Json(version, ControlJson.Default.VersionInfo));
        app.MapGet("/v1/status", () => Results.Json(status(), ControlJson.Default.RouterStatus));
        app.MapGet("/v1/members", () => members is null
            ? Results.Json(new ApiError("gossip_disabled", "this router runs in static mode (its configuration has no `gossip:` section), so it has no cluster members; see README, \"Gossip mode\""),
                ControlJson.Default.ApiError, statusCode: 503)
            : Results.Json(members(), ControlJson.Default.MembersResponse));
        app.MapGet("/v1/sa", () => securityAssociations is null
            ? Results.Json(new ApiError("encryption_disabled", "this router has no encrypted networks, so it holds no SAs"), ControlJson.Default.ApiError, statusCode: 404)
            : Results.Json(securityAssociations(), ControlJson.Default.SaResponse));
        app.MapFallback((HttpContext ctx) => Results.Json(
            new ApiError("not_found", $"no such endpoint: {ctx.Request.Method} {ctx.Request.Path} (this daemon serves /_ping, /v1/version, /v1/status, /v1/members, /v1/sa)"),
            ControlJson.Default.ApiError, statusCode: 404));
        _app = app;
        _path = path;
        await app.StartAsync(cancellationToken).ConfigureAwait(false);
        File.SetUnixFileMode(path, UnixFileMode.UserRead | UnixFileMode.UserWrite);
    }

    /// <summary>Stops serving (requests in flight get two seconds) and removes the socket.</summary>
    public async Task StopAsync(CancellationToken cancellationToken)
    {
        if (Interlocked.Exchange(ref _app, null) is not { } app) return;
        using var cts = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        cts.CancelAfter(TimeSpan.FromSeconds(2));
        try { await app.StopAsync(cts.Token).ConfigureAwait(false); } catch (OperationCanceledException) { }
        await app.DisposeAsync().ConfigureAwait(false);
        try { File.Delete(_path!); } catch (IOException) { }
    }

    /// <inheritdoc/>
    public async ValueTask DisposeAsync() => await StopAsync(CancellationToken.None).ConfigureAwait(false);
}
