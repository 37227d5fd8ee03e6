using System.Globalization;
using System.Net;
using System.Net.Http.Json;
using System.Text.Json.Serialization.Metadata;
using UserOverlay.Cluster.Manager;
using UserOverlay.Control.Networks;

namespace UserOverlay.Cluster.Node;

/// <summary>
/// <see cref="IClusterApi"/> over HTTPS to the managers' control port (2377), one request per call, as
/// <see cref="ClusterRoutes"/> serves them. The channel (mutual TLS with the node's certificate, the cluster's root
/// pinned) is the <see cref="HttpClient"/> the factory makes per manager address. Several managers: a call goes to
/// the one that answered last, and on a connection failure to the next, so one manager's loss costs a retry, not an
/// outage; <see cref="SetManagers"/> follows the cluster's list of managers.
/// </summary>
public sealed class HttpClusterApi : IClusterApi, IDisposable
{
    private readonly Func<string, HttpClient> _clientFor;
    private readonly Dictionary<string, HttpClient> _clients = new(StringComparer.Ordinal);
    private readonly Lock _lock = new();
    private string[] _managers;
    private int _current;

    /// <summary>A client of <paramref name="managers"/> (IP:PORT each), over channels from <paramref name="clientFor"/> (its BaseAddress set to https://IP:PORT/).</summary>
    public HttpClusterApi(IEnumerable<string> managers, Func<string, HttpClient> clientFor)
    {
        _managers = [.. managers];
        if (_managers.Length == 0) throw new ArgumentException("at least one manager address is needed", nameof(managers));
        _clientFor = clientFor;
    }

    /// <inheritdoc/>
    public string Peer
    {
        get { lock (_lock) return $"the manager at {_managers[_current % _managers.Length]}"; }
    }

    /// <summary>The managers' addresses, the one in use first.</summary>
    public IReadOnlyList<string> Managers
    {
        get { lock (_lock) return [.. _managers.Skip(_current % _managers.Length), .. _managers.Take(_current % _managers.Length)]; }
    }

    /// <summary>Replaces the list of managers (from the cluster's nodes); keeps using the current one if it is still listed.</summary>
    public void SetManagers(IEnumerable<string> managers)
    {
        var list = managers.Distinct(StringComparer.Ordinal).ToArray();
        if (list.Length == 0) return;
        lock (_lock)
        {
            string current = _managers[_current % _managers.Length];
            _managers = list;
            _current = Math.Max(0, Array.IndexOf(list, current));
        }
    }

    /// <inheritdoc/>
    public Task<ClusterState> GetStateAsync(long afterRevision, TimeSpan wait, CancellationToken cancellationToken = default) =>
        SendAsync(HttpMethod.Get, string.Create(CultureInfo.InvariantCulture, $"v1/cluster/state?after={afterRevision}&wait_ms={(long)wait.TotalMilliseconds}"),
            null, ClusterProtocolJson.Default.ClusterState, cancellationToken);

    /// <inheritdoc/>
    public Task<AddressAllocation> AllocateAsync(AllocationRequest request, CancellationToken cancellationToken = default) =>
        SendAsync(HttpMethod.Post, "v1/cluster/ipam/allocate", JsonContent.Create(request, ClusterProtocolJson.Default.AllocationRequest),
            ClusterProtocolJson.Default.AddressAllocation, cancellationToken);

    /// <inheritdoc/>
    public Task ReleaseAsync(ReleaseRequest request, CancellationToken cancellationToken = default) =>
        SendAsync<object>(HttpMethod.Post, "v1/cluster/ipam/release", JsonContent.Create(request, ClusterProtocolJson.Default.ReleaseRequest), null, cancellationToken);

    /// <inheritdoc/>
    public Task<NetworkDefinition> CreateNetworkAsync(NetworkCreateRequest request, CancellationToken cancellationToken = default) =>
        SendAsync(HttpMethod.Post, "v1/cluster/networks", JsonContent.Create(request, ClusterProtocolJson.Default.NetworkCreateRequest),
            ClusterProtocolJson.Default.NetworkDefinition, cancellationToken);

    /// <inheritdoc/>
    public Task<NetworkDefinition> RemoveNetworkAsync(string nameOrId, CancellationToken cancellationToken = default) =>
        SendAsync(HttpMethod.Delete, "v1/cluster/networks/" + Uri.EscapeDataString(nameOrId), null, ClusterProtocolJson.Default.NetworkDefinition, cancellationToken);

    /// <inheritdoc/>
    public Task<NodeRecord> SetRoleAsync(RoleChange change, CancellationToken cancellationToken = default) =>
        SendAsync(HttpMethod.Post, "v1/cluster/nodes/role", JsonContent.Create(change, ClusterProtocolJson.Default.RoleChange),
            ClusterProtocolJson.Default.NodeRecord, cancellationToken);

    /// <inheritdoc/>
    public Task<NodeRecord> RemoveNodeAsync(string node, bool force, CancellationToken cancellationToken = default) =>
        SendAsync(HttpMethod.Delete, $"v1/cluster/nodes/{Uri.EscapeDataString(node)}?force={(force ? "true" : "false")}", null,
            ClusterProtocolJson.Default.NodeRecord, cancellationToken);

    /// <inheritdoc/>
    public Task<JoinTokenView> GetJoinTokenAsync(NodeRole role, bool rotate, CancellationToken cancellationToken = default) =>
        SendAsync(rotate ? HttpMethod.Post : HttpMethod.Get, $"v1/cluster/join-token/{(role == NodeRole.Manager ? "manager" : "worker")}", null,
            ClusterProtocolJson.Default.JoinTokenView, cancellationToken);

    // One call: the current manager, then each other one on a connection failure; a manager's answer (even a refusal) ends it.
    private async Task<T> SendAsync<T>(HttpMethod method, string path, HttpContent? body, JsonTypeInfo<T>? result, CancellationToken cancellationToken)
    {
        byte[]? payload = body is null ? null : await body.ReadAsByteArrayAsync(cancellationToken).ConfigureAwait(false);
        string[] managers;
        int start;
        lock (_lock) { managers = _managers; start = _current; }
        Exception? last = null;
        for (int i = 0; i < managers.Length; i++)
        {
            int index = (start + i) % managers.Length;
            string manager = managers[index];
            try
            {
                using var request = new HttpRequestMessage(method, path);
                if (payload is not null)
                {
                    request.Content = new ByteArrayContent(payload);
                    request.Content.Headers.ContentType = new("application/json");
                }
                using var response = await Client(manager).SendAsync(request, HttpCompletionOption.ResponseContentRead, cancellationToken).ConfigureAwait(false);
                lock (_lock) if (_managers == managers) _current = index;
                if (response.IsSuccessStatusCode)
                    return result is null ? default! : (await response.Content.ReadFromJsonAsync(result, cancellationToken).ConfigureAwait(false))!;
                throw await ErrorOf(response, manager, cancellationToken).ConfigureAwait(false);
            }
            catch (HttpRequestException e)
            {
                last = e;
            }
            catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
            {
                last = new TimeoutException($"the manager at {manager} did not answer in time");
            }
        }
        string tried = managers.Length == 1 ? $"the manager at {managers[0]}" : $"any manager ({string.Join(", ", managers)})";
        throw new ControlException(ControlErrorCodes.Unavailable, $"cannot reach {tried}: {last?.Message}", "manager", last);
    }

    private static async Task<ControlException> ErrorOf(HttpResponseMessage response, string manager, CancellationToken cancellationToken)
    {
        ClusterError? error = null;
        try { error = await response.Content.ReadFromJsonAsync(ClusterProtocolJson.Default.ClusterError, cancellationToken).ConfigureAwait(false); }
        catch (Exception e) when (e is System.Text.Json.JsonException or NotSupportedException or InvalidOperationException) { }
        string code = response.StatusCode switch
        {
            HttpStatusCode.Forbidden or HttpStatusCode.Unauthorized => ControlErrorCodes.PermissionDenied,
            HttpStatusCode.NotFound => ControlErrorCodes.NotFound,
            HttpStatusCode.ServiceUnavailable => ControlErrorCodes.Unavailable,
            _ => ControlErrorCodes.Internal,
        };
        // The manager's own codes pass as they are; the channel's refusals (no_certificate, not_manager, …) by their status.
        if (error is { Code.Length: > 0, Message.Length: > 0 })
            return new ControlException(KnownCodes.Contains(error.Code) ? error.Code : code, error.Message, error.Field);
        return new ControlException(code, $"the manager at {manager} answered {(int)response.StatusCode} {response.ReasonPhrase}");
    }

    private static readonly HashSet<string> KnownCodes =
    [
        ControlErrorCodes.InvalidArgument, ControlErrorCodes.Conflict, ControlErrorCodes.NotFound, ControlErrorCodes.Ambiguous, ControlErrorCodes.InUse,
        ControlErrorCodes.PermissionDenied, ControlErrorCodes.Exhausted, ControlErrorCodes.CorruptState, ControlErrorCodes.StorageFailed,
        ControlErrorCodes.Internal, ControlErrorCodes.Unavailable,
    ];

    private HttpClient Client(string manager)
    {
        lock (_lock)
        {
            if (!_clients.TryGetValue(manager, out var client)) _clients[manager] = client = _clientFor(manager);
            return client;
        }
    }

    /// <inheritdoc/>
    public void Dispose()
    {
        lock (_lock)
        {
            foreach (var c in _clients.Values) c.Dispose();
            _clients.Clear();
        }
    }
}
