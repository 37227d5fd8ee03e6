using System.Globalization;
using System.Text.Json;
using System.Text.Json.Serialization.Metadata;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using UserOverlay.Cluster.Manager;
using UserOverlay.Cluster.Store;
using UserOverlay.Control.Networks;

namespace UserOverlay.Cluster.Node;

/// <summary>
/// The node ↔ manager protocol on the managers' control port: each <see cref="IClusterApi"/> call as an HTTPS route
/// (JSON in <see cref="ClusterProtocolJson"/>'s shape), served for the caller the channel authenticated.
/// <list type="bullet">
/// <item>Any node: <c>GET /v1/cluster/state?after=REV&amp;wait_ms=MS</c> → <see cref="ClusterState"/>;
/// <c>POST /v1/cluster/ipam/allocate</c> <see cref="AllocationRequest"/> → <see cref="AddressAllocation"/>;
/// <c>POST /v1/cluster/ipam/release</c> <see cref="ReleaseRequest"/> → 204.</item>
/// <item>Managers only: <c>POST /v1/cluster/networks</c> <see cref="NetworkCreateRequest"/> → 201 <see cref="NetworkDefinition"/>;
/// <c>DELETE /v1/cluster/networks/{name-or-id}</c> → the removed one; <c>POST /v1/cluster/nodes/role</c>
/// <see cref="RoleChange"/> → <see cref="NodeRecord"/>; <c>DELETE /v1/cluster/nodes/{id-or-name}?force=</c> → the removed
/// one; <c>GET|POST /v1/cluster/join-token/{worker|manager}</c> (POST rotates) → <see cref="JoinTokenView"/>.</item>
/// </list>
/// Errors: <see cref="ClusterError"/> with the status of its code (invalid_argument, ambiguous 400; permission_denied
/// 403; not_found 404; conflict, in_use, exhausted 409; unavailable 503; others 500). A body that is not the route's
/// JSON is 400 invalid_argument; bodies are capped by the server.
/// </summary>
internal static class ClusterRoutes
{
    /// <summary>Longest wait a state request may ask for.</summary>
    public static readonly TimeSpan MaxWait = TimeSpan.FromSeconds(60);

    /// <summary>Maps the routes any node may call onto <paramref name="nodes"/>.</summary>
    public static void MapNodeRoutes(IEndpointRouteBuilder nodes, Func<HttpContext, IClusterApi> apiFor)
    {
        nodes.MapGet("/v1/cluster/state", c => Handle(c, async () =>
        {
            long after = long.TryParse(c.Request.Query["after"], NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out long a) ? a : -1;
            long waitMs = long.TryParse(c.Request.Query["wait_ms"], NumberStyles.None, CultureInfo.InvariantCulture, out long w) ? w : 0;
            var wait = TimeSpan.FromMilliseconds(Math.Clamp(waitMs, 0, (long)MaxWait.TotalMilliseconds));
            var state = await apiFor(c).GetStateAsync(after, wait, c.RequestAborted).ConfigureAwait(false);
            await Write(c, 200, state, ClusterProtocolJson.Default.ClusterState).ConfigureAwait(false);
        }));
        nodes.MapPost("/v1/cluster/ipam/allocate", c => Handle(c, async () =>
        {
            var request = await Read(c, ClusterProtocolJson.Default.AllocationRequest).ConfigureAwait(false);
            var allocation = await apiFor(c).AllocateAsync(request, c.RequestAborted).ConfigureAwait(false);
            await Write(c, 200, allocation, ClusterProtocolJson.Default.AddressAllocation).ConfigureAwait(false);
        }));
        nodes.MapPost("/v1/cluster/ipam/release", c => Handle(c, async () =>
        {
            var request = await Read(c, ClusterProtocolJson.Default.ReleaseRequest).ConfigureAwait(false);
            await apiFor(c).ReleaseAsync(request, c.RequestAborted).ConfigureAwait(false);
            c.Response.StatusCode = 204;
        }));
    }

    /// <summary>Maps the managers-only routes onto <paramref name="managers"/> (the channel admits manager certificates only; the API checks again).</summary>
    public static void MapManagerRoutes(IEndpointRouteBuilder managers, Func<HttpContext, IClusterApi> apiFor)
    {
        managers.MapPost("/v1/cluster/networks", c => Handle(c, async () =>
        {
            var request = await Read(c, ClusterProtocolJson.Default.NetworkCreateRequest).ConfigureAwait(false);
            var def = await apiFor(c).CreateNetworkAsync(request, c.RequestAborted).ConfigureAwait(false);
            await Write(c, 201, def, ClusterProtocolJson.Default.NetworkDefinition).ConfigureAwait(false);
        }));
        managers.MapDelete("/v1/cluster/networks/{network}", c => Handle(c, async () =>
        {
            var def = await apiFor(c).RemoveNetworkAsync((string)c.Request.RouteValues["network"]!, c.RequestAborted).ConfigureAwait(false);
            await Write(c, 200, def, ClusterProtocolJson.Default.NetworkDefinition).ConfigureAwait(false);
        }));
        managers.MapPost("/v1/cluster/nodes/role", c => Handle(c, async () =>
        {
            var change = await Read(c, ClusterProtocolJson.Default.RoleChange).ConfigureAwait(false);
            var node = await apiFor(c).SetRoleAsync(change, c.RequestAborted).ConfigureAwait(false);
            await Write(c, 200, node, ClusterProtocolJson.Default.NodeRecord).ConfigureAwait(false);
        }));
        managers.MapDelete("/v1/cluster/nodes/{node}", c => Handle(c, async () =>
        {
            bool force = string.Equals(c.Request.Query["force"], "true", StringComparison.OrdinalIgnoreCase);
            var node = await apiFor(c).RemoveNodeAsync((string)c.Request.RouteValues["node"]!, force, c.RequestAborted).ConfigureAwait(false);
            await Write(c, 200, node, ClusterProtocolJson.Default.NodeRecord).ConfigureAwait(false);
        }));
        RequestDelegate token = c => Handle(c, async () =>
        {
            var role = (string)c.Request.RouteValues["role"]! switch
            {
                "worker" => NodeRole.Worker,
                "manager" => NodeRole.Manager,
                var other => throw ControlException.Invalid("role", $"'{ControlException.Printable(other)}' is not worker or manager"),
            };
            var view = await apiFor(c).GetJoinTokenAsync(role, HttpMethods.IsPost(c.Request.Method), c.RequestAborted).ConfigureAwait(false);
            await Write(c, 200, view, ClusterProtocolJson.Default.JoinTokenView).ConfigureAwait(false);
        });
        managers.MapGet("/v1/cluster/join-token/{role}", token);
        managers.MapPost("/v1/cluster/join-token/{role}", token);
    }

    /// <summary>The HTTP status of a <see cref="ControlErrorCodes"/> code.</summary>
    public static int StatusOf(string code) => code switch
    {
        ControlErrorCodes.InvalidArgument or ControlErrorCodes.Ambiguous => 400,
        ControlErrorCodes.PermissionDenied => 403,
        ControlErrorCodes.NotFound => 404,
        ControlErrorCodes.Conflict or ControlErrorCodes.InUse or ControlErrorCodes.Exhausted => 409,
        ControlErrorCodes.Unavailable => 503,
        _ => 500,
    };

    /// <summary>Writes a <see cref="ClusterError"/>.</summary>
    public static Task WriteError(HttpContext c, string code, string message, string? field = null) =>
        Write(c, StatusOf(code), new ClusterError(code, message, field), ClusterProtocolJson.Default.ClusterError);

    private static async Task Handle(HttpContext c, Func<Task> body)
    {
        try
        {
            await body().ConfigureAwait(false);
        }
        catch (ControlException e)
        {
            await WriteError(c, e.Code, e.Message, e.Field).ConfigureAwait(false);
        }
        catch (StoreException e) when (e.Code is StoreErrorCode.Unavailable or StoreErrorCode.Closed)
        {
            await WriteError(c, ControlErrorCodes.Unavailable, $"the managers' store is not available now ({e.Message}); retry in a moment").ConfigureAwait(false);
        }
        catch (StoreException e)
        {
            await WriteError(c, ControlErrorCodes.Internal, $"the managers' store refused the change: {e.Message}").ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (c.RequestAborted.IsCancellationRequested) { }
    }

    private static async Task<T> Read<T>(HttpContext c, JsonTypeInfo<T> type)
    {
        try
        {
            return await JsonSerializer.DeserializeAsync(c.Request.Body, type, c.RequestAborted).ConfigureAwait(false)
                ?? throw ControlException.Invalid("body", "is empty (expected a JSON object)");
        }
        catch (JsonException e)
        {
            throw ControlException.Invalid("body", $"is not the request's JSON: {e.Message}");
        }
    }

    private static async Task Write<T>(HttpContext c, int status, T value, JsonTypeInfo<T> type)
    {
        c.Response.StatusCode = status;
        c.Response.ContentType = "application/json";
        await JsonSerializer.SerializeAsync(c.Response.Body, value, type, c.RequestAborted).ConfigureAwait(false);
    }
}
