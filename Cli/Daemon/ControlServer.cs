using System.Text.Json;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Connections.Features;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using UserOverlay.Cli.Commands;
using UserOverlay.Cluster.Node;
using UserOverlay.Control.Networks;
using UserOverlay.Router;

namespace UserOverlay.Cli.Daemon;

/// <summary>
/// Serves the control API (<see cref="ControlApi"/>) on the router's Unix socket with Kestrel, as a
/// hosted service that starts after the router, gossip and the network service, so the socket answers only once
/// there is a router to answer for. Access (<see cref="SocketAccess"/>): the directory is 0755 and the socket 0660
/// root:GROUP; every POST and DELETE, and <c>GET /v1/sa</c> and <c>/v1/capture</c>, needs the caller (SO_PEERCRED) to be uid 0.
/// Kestrel runs in a web application of its own, fed the daemon's loggers.
/// </summary>
internal sealed class ControlServer(DaemonOptions options, RouterService router, NetworkService networks, ClusterService cluster, ILoggerFactory loggers, GossipService gossip)
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
        Func<SaResponse>? securityAssociations = options.Config.Router.Encryption is null ? null
            : () => new SaResponse(SaCommand.Warning, r.DescribeSecurityAssociations());

        uint gid = SocketAccess.ResolveGroup(options.Group);
        const UnixFileMode DirectoryMode = UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute
            | UnixFileMode.GroupRead | UnixFileMode.GroupExecute | UnixFileMode.OtherRead | UnixFileMode.OtherExecute;
        Directory.CreateDirectory(ControlApi.SocketDirectory, DirectoryMode);
        File.SetUnixFileMode(ControlApi.SocketDirectory, DirectoryMode);
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
        app.Use(async (ctx, next) =>
        {
            // Changes, and the SAs (they hold keys), are root's; reading is for whoever may connect (the socket's group).
            bool privileged = !HttpMethods.IsGet(ctx.Request.Method) && !HttpMethods.IsHead(ctx.Request.Method)
                || ctx.Request.Path.StartsWithSegments("/v1/sa", StringComparison.Ordinal)
                || ctx.Request.Path.StartsWithSegments("/v1/capture", StringComparison.Ordinal); // decrypted traffic
            var peer = PeerCredentials.Of(ctx.Features.Get<IConnectionSocketFeature>()?.Socket);
            if (peer is { } p) ctx.Items[typeof(PeerCredentials)] = p;
            if (privileged && peer is not { Uid: 0 })
            {
                string who = peer is { } q ? $"you are uid {q.Uid}" : "the caller's credentials cannot be read";
                await Results.Json(new ApiError("permission_denied",
                    $"this needs root: the router's control socket accepts changes only from uid 0 ({who})"),
                    ControlJson.Default.ApiError, statusCode: StatusCodes.Status403Forbidden).ExecuteAsync(ctx).ConfigureAwait(false);
                return;
            }
            await next(ctx).ConfigureAwait(false);
        });
        MapNetworkRoutes(app, networks, cluster);
        MapEndpointRoutes(app, networks, router);
        MapClusterRoutes(app, cluster);
        CaptureRoute.Map(app, router);
        app.MapGet("/_ping", () => Results.Text("OK"));
        app.MapGet("/v1/version", () => Results.Json(version, ControlJson.Default.VersionInfo));
        app.MapGet("/v1/status", () => Results.Json(status(), ControlJson.Default.RouterStatus));
        app.MapGet("/v1/members", () => gossip.Current is not { } agent
            ? Results.Json(new ApiError("gossip_disabled", "this router runs in static mode (its configuration has no `gossip:` section, and it is not in a cluster), so it has no gossip members; see README, \"Gossip mode\""),
                ControlJson.Default.ApiError, statusCode: 503)
            : Results.Json(agent.GetMembers(), ControlJson.Default.MembersResponse));
        app.MapGet("/v1/sa", () => securityAssociations is null
            ? Results.Json(new ApiError("encryption_disabled", "this router has no encrypted networks, so it holds no SAs"), ControlJson.Default.ApiError, statusCode: 404)
            : Results.Json(securityAssociations(), ControlJson.Default.SaResponse));
        app.MapFallback((HttpContext ctx) => Results.Json(
            new ApiError("not_found", $"no such endpoint: {ctx.Request.Method} {ctx.Request.Path} (this daemon serves /_ping, /v1/version, /v1/status, /v1/members, /v1/sa, /v1/capture, /v1/networks, /v1/workloads, /v1/swarm, /v1/nodes)"),
            ControlJson.Default.ApiError, statusCode: 404));
        _app = app;
        _path = path;
        await app.StartAsync(cancellationToken).ConfigureAwait(false);
        SocketAccess.Restrict(path, gid);
    }

    /// <summary>The routes of networks, endpoints and workloads (the contract in <see cref="ControlApi"/>).</summary>
    private static void MapNetworkRoutes(WebApplication app, NetworkService service, ClusterService cluster)
    {
        var docker = DockerJson.Default;
        // A cluster network's inspect names its hosts (Peers), from the managers' state this node holds.
        NetworkInspect Inspect(string nameOrId)
        {
            var m = service.Manager;
            var view = m.Inspect(nameOrId);
            return cluster.Node.PeersOf(m.GetNetwork(view.Id)) is { } peers ? view with { Peers = peers } : view;
        }
        app.MapGet("/v1/networks", Api(_ =>
        {
            IReadOnlyList<NetworkInspect> all = [.. service.Manager.ListNetworks().OrderBy(n => n.Name, StringComparer.Ordinal).Select(n => Inspect(n.Id))];
            return Task.FromResult(Results.Json(all, docker.IReadOnlyListNetworkInspect));
        }));
        app.MapPost("/v1/networks", Api(async ctx =>
        {
            var request = await Body(ctx, ControlJson.Default.NetworkCreateRequest).ConfigureAwait(false);
            // In a cluster, a network is the cluster's (created by the managers, served by every node).
            var def = cluster.Node.Active
                ? await cluster.Node.CreateNetworkAsync(request, ctx.RequestAborted).ConfigureAwait(false)
                : service.Manager.CreateNetwork(request);
            return Results.Json(Inspect(def.Id), docker.NetworkInspect, statusCode: StatusCodes.Status201Created);
        }));
        app.MapGet("/v1/networks/{network}", Api(ctx =>
            Task.FromResult(Results.Json(Inspect(Route(ctx, "network")), docker.NetworkInspect))));
        app.MapDelete("/v1/networks/{network}", Api(async ctx =>
        {
            var def = service.Manager.GetNetwork(Route(ctx, "network"));
            if (def.Scope == NetworkManager.SwarmScope) await cluster.Node.RemoveNetworkAsync(def.Id, ctx.RequestAborted).ConfigureAwait(false);
            else service.Manager.RemoveNetwork(def.Id);
            return Results.NoContent();
        }));
        app.MapPost("/v1/networks/{network}/connect", Api(async ctx =>
        {
            var body = await Body(ctx, ControlJson.Default.ConnectRequest).ConfigureAwait(false);
            var m = service.Manager;
            var ep = m.Attach(new EndpointAttachRequest
            {
                Network = Route(ctx, "network"),
                Netns = body.Netns!,
                Name = body.Name,
                Interface = body.Interface,
                Address = body.Address,
                Mac = body.Mac,
                Aliases = body.Aliases ?? [],
            });
            return Results.Json(EndpointView.From(m.GetNetwork(ep.NetworkId), ep), ControlJson.Default.EndpointView, statusCode: StatusCodes.Status201Created);
        }));
        app.MapPost("/v1/networks/{network}/disconnect", Api(async ctx =>
        {
            var body = await Body(ctx, ControlJson.Default.DisconnectRequest).ConfigureAwait(false);
            var m = service.Manager;
            var ep = m.Detach(Route(ctx, "network"), body.Netns ?? body.Name ?? "");
            return Results.Json(EndpointView.From(m.GetNetwork(ep.NetworkId), ep), ControlJson.Default.EndpointView);
        }));
        app.MapGet("/v1/workloads", Api(_ => Task.FromResult(Results.Json(service.Workloads.List(), ControlJson.Default.IReadOnlyListWorkloadView))));
        app.MapPost("/v1/workloads", Api(async ctx =>
        {
            var body = await Body(ctx, ControlJson.Default.WorkloadCreateRequest).ConfigureAwait(false);
            int caller = ctx.Items.TryGetValue(typeof(PeerCredentials), out var p) && p is PeerCredentials peer ? peer.Pid : 0;
            if (!body.Detached && body.ClientPid is null && caller <= 0)
                throw new ControlException(ControlErrorCodes.InvalidArgument, "client_pid: is required (the caller's process id cannot be read)", "client_pid");
            return Results.Json(service.Workloads.Create(body, caller), ControlJson.Default.WorkloadView, statusCode: StatusCodes.Status201Created);
        }));
        app.MapDelete("/v1/workloads/{name}", Api(ctx =>
        {
            service.Workloads.Delete(Route(ctx, "name"));
            return Task.FromResult(Results.NoContent());
        }));
    }

    /// <summary>A network's endpoints, listed and one by one (the CNI plugin's CHECK and GC; <see cref="EndpointQueries"/>).</summary>
    private static void MapEndpointRoutes(WebApplication app, NetworkService service, RouterService router)
    {
        app.MapGet("/v1/networks/{network}/endpoints", Api(ctx => Task.FromResult(Results.Json(
            EndpointQueries.List(service.Manager, Route(ctx, "network")), ControlJson.Default.IReadOnlyListEndpointView))));
        app.MapGet("/v1/networks/{network}/endpoints/{endpoint}", Api(ctx => Task.FromResult(Results.Json(
            EndpointQueries.Detail(service.Manager, router.Router, Route(ctx, "network"), Route(ctx, "endpoint")), ControlJson.Default.EndpointDetail))));
    }

    /// <summary>The cluster's routes: swarm init/join/leave/status/join-token and node ls/rm/role (<see cref="UserOverlay.Cluster.Node.ClusterNode"/>).</summary>
    private static void MapClusterRoutes(WebApplication app, ClusterService cluster)
    {
        var json = ControlJson.Default;
        app.MapGet("/v1/swarm", Api(_ => Task.FromResult(Results.Json(cluster.Node.Status(), json.SwarmStatus))));
        app.MapPost("/v1/swarm/init", Api(async ctx =>
        {
            var body = await Body(ctx, json.SwarmInitRequest).ConfigureAwait(false);
            return Results.Json(await cluster.Node.InitAsync(body, ctx.RequestAborted).ConfigureAwait(false), json.SwarmStatus, statusCode: StatusCodes.Status201Created);
        }));
        app.MapPost("/v1/swarm/join", Api(async ctx =>
        {
            var body = await Body(ctx, json.SwarmJoinRequest).ConfigureAwait(false);
            return Results.Json(await cluster.Node.JoinAsync(body, ctx.RequestAborted).ConfigureAwait(false), json.SwarmStatus);
        }));
        app.MapPost("/v1/swarm/leave", Api(async ctx =>
        {
            var body = await Body(ctx, json.SwarmLeaveRequest).ConfigureAwait(false);
            return Results.Json(await cluster.Node.LeaveAsync(body.Force, ctx.RequestAborted).ConfigureAwait(false), json.SwarmStatus);
        }));
        RequestDelegate token = Api(async ctx => Results.Json(
            await cluster.Node.JoinTokenAsync(ParseRole(Route(ctx, "role"), "role"), HttpMethods.IsPost(ctx.Request.Method), ctx.RequestAborted).ConfigureAwait(false),
            json.JoinTokenResult));
        app.MapGet("/v1/swarm/join-token/{role}", token);
        app.MapPost("/v1/swarm/join-token/{role}", token);
        app.MapGet("/v1/nodes", Api(_ => Task.FromResult(Results.Json(cluster.Node.ListNodes(), json.IReadOnlyListNodeView))));
        app.MapDelete("/v1/nodes/{node}", Api(async ctx =>
        {
            bool force = string.Equals(ctx.Request.Query["force"], "true", StringComparison.OrdinalIgnoreCase);
            return Results.Json(await cluster.Node.RemoveNodeAsync(Route(ctx, "node"), force, ctx.RequestAborted).ConfigureAwait(false), json.NodeView);
        }));
        app.MapPost("/v1/nodes/{node}/role", Api(async ctx =>
        {
            var body = await Body(ctx, json.NodeRoleRequest).ConfigureAwait(false);
            return Results.Json(await cluster.Node.SetRoleAsync(Route(ctx, "node"), ParseRole(body.Role, "role"), ctx.RequestAborted).ConfigureAwait(false), json.NodeView);
        }));
    }

    private static UserOverlay.Cluster.Manager.NodeRole ParseRole(string? text, string field) => text switch
    {
        "worker" => UserOverlay.Cluster.Manager.NodeRole.Worker,
        "manager" => UserOverlay.Cluster.Manager.NodeRole.Manager,
        _ => throw ControlException.Invalid(field, $"'{ControlException.Printable(text)}' is not worker or manager"),
    };

    /// <summary>A route handler whose <see cref="ControlException"/>s and unreadable bodies become the API's errors.</summary>
    private static RequestDelegate Api(Func<HttpContext, Task<IResult>> handler) => async ctx =>
    {
        IResult result;
        try
        {
            result = await handler(ctx).ConfigureAwait(false);
        }
        catch (ControlException e)
        {
            result = Results.Json(new ApiError(e.Code, e.Message), ControlJson.Default.ApiError, statusCode: StatusOf(e.Code));
        }
        catch (JsonException e)
        {
            result = Results.Json(new ApiError("bad_request", $"the request body is not the JSON this route takes: {e.Message}"), ControlJson.Default.ApiError, statusCode: 400);
        }
        catch (UserOverlay.Cluster.Store.StoreException e)
        {
            result = Results.Json(new ApiError(ControlErrorCodes.Unavailable, $"the cluster's store cannot answer now: {e.Message}"), ControlJson.Default.ApiError, statusCode: 503);
        }
        catch (Exception e) when (e is RouterException or IOException or UnauthorizedAccessException or InvalidOperationException)
        {
            result = Results.Json(new ApiError(ControlErrorCodes.Internal, e.Message), ControlJson.Default.ApiError, statusCode: 500);
        }
        await result.ExecuteAsync(ctx).ConfigureAwait(false);
    };

    /// <summary>The HTTP status of an error code (the contract's map).</summary>
    public static int StatusOf(string code) => code switch
    {
        ControlErrorCodes.InvalidArgument or ControlErrorCodes.Ambiguous or "bad_request" => 400,
        "permission_denied" => 403,
        ControlErrorCodes.NotFound => 404,
        ControlErrorCodes.Conflict or ControlErrorCodes.InUse or ControlErrorCodes.Exhausted => 409,
        ControlErrorCodes.Unavailable => 503,
        _ => 500,
    };

    private static string Route(HttpContext ctx, string key) => ctx.Request.RouteValues[key] as string ?? "";

    private static async Task<T> Body<T>(HttpContext ctx, System.Text.Json.Serialization.Metadata.JsonTypeInfo<T> type) where T : class =>
        await JsonSerializer.DeserializeAsync(ctx.Request.Body, type, ctx.RequestAborted).ConfigureAwait(false)
        ?? throw new JsonException("the body is null");

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
