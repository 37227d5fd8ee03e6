using System.Text.Json;
using System.Text.Json.Serialization.Metadata;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Connections.Features;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using UserOverlay.Cli.Daemon;
using UserOverlay.Control.Networks;
using UserOverlay.Router;

namespace UserOverlay.Cli.Docker;

/// <summary>
/// Serves <see cref="DockerNetworkPlugin"/> on Docker's plugin socket (<c>up --docker-plugin</c>; default
/// /run/docker/plugins/useroverlay.sock when /run/docker/plugins exists) with Kestrel, as a hosted service that starts
/// after the network and cluster services (it restores Docker's endpoints first) and before the control API. The socket
/// is 0660 root:root and every request must come from uid 0 (SO_PEERCRED), as dockerd runs. Requests are Docker's
/// legacy plugin protocol: POST /Plugin.Activate, /NetworkDriver.*, /IpamDriver.* with JSON bodies of at most 1 MiB;
/// an answer that is not a success is {"Err": "…"} with 400 (bad request), 403, 404, 409 or 500.
/// </summary>
internal sealed class DockerPluginServer(DaemonOptions options, RouterService router, NetworkService networks, ClusterService cluster, ILoggerFactory loggers)
    : IHostedService, IAsyncDisposable
{
    /// <summary>Docker's directory of plugin sockets.</summary>
    public const string PluginDirectory = "/run/docker/plugins";

    /// <summary>The default socket.</summary>
    public static readonly string DefaultSocket = Path.Combine(PluginDirectory, DockerNetworkPlugin.PluginName + ".sock");

    private const string ContentType = "application/vnd.docker.plugins.v1.2+json";
    private const long MaxBody = 1 << 20;

    private readonly ILogger _log = loggers.CreateLogger("useroverlay.docker");
    private WebApplication? _app;
    private string? _path;

    /// <summary>The plugin (after start).</summary>
    public DockerNetworkPlugin? Plugin { get; private set; }

    /// <summary>The socket <c>up</c> serves: the option's path, the default when the option is absent and Docker's plugin directory exists, or null (off).</summary>
    public static string? SocketFor(string? option, bool given)
    {
        if (!given) return Directory.Exists(PluginDirectory) ? DefaultSocket : null;
        if (option is null or "" or "on") return DefaultSocket;
        if (option == "off") return null;
        return Path.GetFullPath(option);
    }

    /// <inheritdoc/>
    public async Task StartAsync(CancellationToken cancellationToken)
    {
        if (options.DockerPluginSocket is not { } path) return;
        // On by default: a second router on the machine (another --name) leaves the plugin to the one that has it.
        if (options.DockerPluginDefaulted && File.Exists(path) && ControlClient.IsLive(path))
        {
            DockerLog.NotServing(_log, path);
            return;
        }
        var plugin = new DockerNetworkPlugin(() => networks.Manager, () => cluster.Node, router.Router, options.StateDirectory, _log);
        plugin.Restore();
        Plugin = plugin;

        try
        {
            _app = await ServeAsync(path, plugin, loggers, cancellationToken).ConfigureAwait(false);
        }
        catch (Exception e) when (options.DockerPluginDefaulted && e is IOException or UnauthorizedAccessException or System.Net.Sockets.SocketException or RouterException)
        {
            // On by default, the plugin never stops the router: say why it is off (a read-only /run/docker/plugins…).
            DockerLog.CannotServe(_log, path, e.Message);
            Plugin = null;
            return;
        }
        _path = path;
        DockerLog.Serving(_log, path, DockerNetworkPlugin.PluginName);
    }

    /// <summary>
    /// Serves <paramref name="plugin"/> on the Unix socket <paramref name="path"/> (0660 root:root; requests from uid 0
    /// only), refusing a path another live process serves. The caller stops and disposes the application.
    /// </summary>
    public static async Task<WebApplication> ServeAsync(string path, DockerNetworkPlugin plugin, ILoggerFactory loggers, CancellationToken cancellationToken)
    {
        var log = loggers.CreateLogger("useroverlay.docker");
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        if (File.Exists(path))
        {
            if (ControlClient.IsLive(path))
                throw new RouterException(RouterErrorCode.SystemError, $"the Docker plugin socket {path} is served by another process; stop it, or give up --docker-plugin=PATH (or off)");
            File.Delete(path);
        }
        var builder = WebApplication.CreateEmptyBuilder(new WebApplicationOptions { ApplicationName = "useroverlay", ContentRootPath = AppContext.BaseDirectory });
        builder.Services.AddLogging();
        builder.Services.AddSingleton(loggers);
        builder.Services.AddRoutingCore();
        builder.WebHost.UseKestrelCore();
        builder.WebHost.ConfigureKestrel(k =>
        {
            k.ListenUnixSocket(path);
            k.AddServerHeader = false;
            k.Limits.MaxRequestBodySize = MaxBody;
        });
        var app = builder.Build();
        app.Use(async (ctx, next) =>
        {
            if (PeerCredentials.Of(ctx.Features.Get<IConnectionSocketFeature>()?.Socket) is not { Uid: 0 })
            {
                await Write(ctx, 403, new PluginError("the Docker plugin socket accepts requests from root (dockerd) only"), DockerPluginJson.Default.PluginError).ConfigureAwait(false);
                return;
            }
            await next(ctx).ConfigureAwait(false);
        });
        Map(app, plugin, log);
        // A pattern of its own: the default fallback skips paths that look like file names, as every method's does (Plugin.Activate).
        app.MapFallback("{**path}", (RequestDelegate)(ctx => Write(ctx, 404,
            new PluginError($"{ctx.Request.Method} {ctx.Request.Path} is not a method of this plugin (it implements NetworkDriver and IpamDriver)"), DockerPluginJson.Default.PluginError)));
        await app.StartAsync(cancellationToken).ConfigureAwait(false);
        SocketAccess.Restrict(path, 0);
        return app;
    }

    /// <summary>The plugin's routes.</summary>
    public static void Map(IEndpointRouteBuilder app, DockerNetworkPlugin plugin, ILogger log)
    {
        var j = DockerPluginJson.Default;
        Route(app, log, "/Plugin.Activate", _ => Task.FromResult(Reply(new ActivateResponse(["NetworkDriver", "IpamDriver"]), j.ActivateResponse)));
        Route(app, log, "/NetworkDriver.GetCapabilities", _ => Task.FromResult(Reply(new DriverCapabilities("local", "global"), j.DriverCapabilities)));
        Route(app, log, "/NetworkDriver.CreateNetwork", async ctx => { await plugin.CreateNetworkAsync(await Body(ctx, j.CreateNetworkRequest).ConfigureAwait(false)).ConfigureAwait(false); return Empty(); });
        Route(app, log, "/NetworkDriver.DeleteNetwork", async ctx => { await plugin.DeleteNetworkAsync(await Body(ctx, j.NetworkIdRequest).ConfigureAwait(false)).ConfigureAwait(false); return Empty(); });
        Route(app, log, "/NetworkDriver.CreateEndpoint", async ctx => Reply(await plugin.CreateEndpointAsync(await Body(ctx, j.CreateEndpointRequest).ConfigureAwait(false)).ConfigureAwait(false), j.CreateEndpointResponse));
        Route(app, log, "/NetworkDriver.DeleteEndpoint", async ctx => { await plugin.DeleteEndpointAsync(await Body(ctx, j.EndpointIdRequest).ConfigureAwait(false)).ConfigureAwait(false); return Empty(); });
        Route(app, log, "/NetworkDriver.EndpointOperInfo", async ctx => Reply(await plugin.EndpointInfoAsync(await Body(ctx, j.EndpointIdRequest).ConfigureAwait(false)).ConfigureAwait(false), j.EndpointInfoResponse));
        Route(app, log, "/NetworkDriver.Join", async ctx => Reply(await plugin.JoinAsync(await Body(ctx, j.JoinRequest).ConfigureAwait(false)).ConfigureAwait(false), j.JoinResponse));
        Route(app, log, "/NetworkDriver.Leave", async ctx => { await plugin.LeaveAsync(await Body(ctx, j.EndpointIdRequest).ConfigureAwait(false)).ConfigureAwait(false); return Empty(); });
        foreach (string nothing in (string[])["DiscoverNew", "DiscoverDelete", "ProgramExternalConnectivity", "RevokeExternalConnectivity"])
            Route(app, log, "/NetworkDriver." + nothing, async ctx => { await BodyElement(ctx).ConfigureAwait(false); return Empty(); });
        Route(app, log, "/IpamDriver.GetCapabilities", _ => Task.FromResult(Reply(new IpamCapabilities(false, false), j.IpamCapabilities)));
        Route(app, log, "/IpamDriver.GetDefaultAddressSpaces", _ => Task.FromResult(Reply(new AddressSpacesResponse(DockerNetworkPlugin.AddressSpace, DockerNetworkPlugin.AddressSpace), j.AddressSpacesResponse)));
        Route(app, log, "/IpamDriver.RequestPool", async ctx => Reply(await plugin.RequestPoolAsync(await Body(ctx, j.RequestPoolRequest).ConfigureAwait(false)).ConfigureAwait(false), j.RequestPoolResponse));
        Route(app, log, "/IpamDriver.ReleasePool", async ctx => { await plugin.ReleasePoolAsync(await Body(ctx, j.ReleasePoolRequest).ConfigureAwait(false)).ConfigureAwait(false); return Empty(); });
        Route(app, log, "/IpamDriver.RequestAddress", async ctx => Reply(await plugin.RequestAddressAsync(await Body(ctx, j.RequestAddressRequest).ConfigureAwait(false)).ConfigureAwait(false), j.RequestAddressResponse));
        Route(app, log, "/IpamDriver.ReleaseAddress", async ctx => { await plugin.ReleaseAddressAsync(await Body(ctx, j.ReleaseAddressRequest).ConfigureAwait(false)).ConfigureAwait(false); return Empty(); });
    }

    private static Func<HttpContext, Task> Reply<T>(T value, JsonTypeInfo<T> type) => ctx => Write(ctx, 200, value, type);

    private static Func<HttpContext, Task> Empty() => ctx => Write(ctx, 200, new PluginEmpty(), DockerPluginJson.Default.PluginEmpty);

    // A POST route whose refusals become {"Err"} answers.
    private static void Route(IEndpointRouteBuilder app, ILogger log, string path, Func<HttpContext, Task<Func<HttpContext, Task>>> handler) =>
        app.MapPost(path, (RequestDelegate)(async ctx =>
        {
            Func<HttpContext, Task> answer;
            try
            {
                answer = await handler(ctx).ConfigureAwait(false);
            }
            catch (ControlException e)
            {
                DockerLog.Refused(log, path, e.Message);
                answer = c => Write(c, ControlServer.StatusOf(e.Code), new PluginError(e.Message), DockerPluginJson.Default.PluginError);
            }
            catch (Exception e) when (e is JsonException or BadHttpRequestException)
            {
                DockerLog.Refused(log, path, e.Message);
                answer = c => Write(c, 400, new PluginError($"the request body is not the JSON {path} takes: {e.Message}"), DockerPluginJson.Default.PluginError);
            }
            catch (Exception e) when (e is RouterException or IOException or UnauthorizedAccessException or InvalidOperationException or UserOverlay.Cluster.Store.StoreException)
            {
                DockerLog.Refused(log, path, e.Message);
                answer = c => Write(c, 500, new PluginError(e.Message), DockerPluginJson.Default.PluginError);
            }
            await answer(ctx).ConfigureAwait(false);
        }));

    private static async Task<T> Body<T>(HttpContext ctx, JsonTypeInfo<T> type) where T : class =>
        await JsonSerializer.DeserializeAsync(ctx.Request.Body, type, ctx.RequestAborted).ConfigureAwait(false)
        ?? throw new JsonException("the body is null");

    // Methods that take a body and use none still refuse one that is not JSON; an empty body is fine.
    private static async Task BodyElement(HttpContext ctx)
    {
        using var buffer = new MemoryStream();
        await ctx.Request.Body.CopyToAsync(buffer, ctx.RequestAborted).ConfigureAwait(false);
        if (buffer.Length > 0) JsonDocument.Parse(buffer.ToArray()).Dispose();
    }

    private static async Task Write<T>(HttpContext ctx, int status, T value, JsonTypeInfo<T> type)
    {
        ctx.Response.StatusCode = status;
        ctx.Response.ContentType = ContentType;
        await JsonSerializer.SerializeAsync(ctx.Response.Body, value, type, ctx.RequestAborted).ConfigureAwait(false);
    }

    /// <inheritdoc/>
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
