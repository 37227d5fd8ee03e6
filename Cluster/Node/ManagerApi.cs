using UserOverlay.Cluster.Manager;
using UserOverlay.Cluster.Store;
using UserOverlay.Control.Networks;

namespace UserOverlay.Cluster.Node;

/// <summary>
/// <see cref="IClusterApi"/> on a manager, for one caller: the operations of <see cref="ClusterManager"/> with the
/// caller's node id filled in and its role checked. The 2377 server makes one per request from the caller's
/// certificate; a manager's own agent uses one for itself.
/// </summary>
/// <param name="manager">The managers' state.</param>
/// <param name="callerId">The calling node's id.</param>
/// <param name="callerRole">Its role, as its certificate says.</param>
/// <param name="newToken">Makes a fresh join token for the cluster's root CA certificate (PEM) — a new secret, the same digest.</param>
public sealed class ManagerApi(ClusterManager manager, string callerId, NodeRole callerRole, Func<string, string> newToken) : IClusterApi
{
    /// <inheritdoc/>
    public string Peer => "this manager";

    /// <inheritdoc/>
    public async Task<ClusterState> GetStateAsync(long afterRevision, TimeSpan wait, CancellationToken cancellationToken = default)
    {
        var store = manager.Store;
        if (store.Revision <= afterRevision && wait > TimeSpan.Zero)
        {
            using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
            timeout.CancelAfter(wait);
            try
            {
                // The first change after the caller's revision ends the wait (the watch ends quietly on the timeout).
                await foreach (var _ in store.WatchAsync("", afterRevision + 1, timeout.Token).ConfigureAwait(false)) break;
            }
            catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested) { }
            catch (StoreException e) when (e.Code == StoreErrorCode.Compacted) { } // it changed long ago: read now
        }
        cancellationToken.ThrowIfCancellationRequested();
        return await ReadStateAsync(cancellationToken).ConfigureAwait(false);
    }

    /// <summary>The state now (the revision read first, so a change during the reads makes the next call return at once).</summary>
    public async Task<ClusterState> ReadStateAsync(CancellationToken cancellationToken = default)
    {
        var store = manager.Store;
        long revision = store.Revision;
        var info = await manager.GetInfoAsync(cancellationToken).ConfigureAwait(false)
            ?? throw new ControlException(ControlErrorCodes.NotFound, "this manager's store holds no cluster", "cluster");
        var nodes = await manager.ListNodesAsync(cancellationToken).ConfigureAwait(false);
        var networks = await manager.ListNetworksAsync(cancellationToken).ConfigureAwait(false);
        var ipsec = await manager.GetKeyRingAsync(KeyRing.Ipsec, cancellationToken).ConfigureAwait(false);
        var gossip = await manager.GetKeyRingAsync(KeyRing.Gossip, cancellationToken).ConfigureAwait(false);
        var ipam = await store.RangeAsync(ClusterKeys.Ipam, cancellationToken: cancellationToken).ConfigureAwait(false);
        var allocations = ipam.Kvs.Select(kv => ClusterManager.Decode(kv, ClusterJson.Default.AddressAllocation)).ToList();
        var peers = allocations.GroupBy(a => a.NetworkId, StringComparer.Ordinal).ToDictionary(
            g => g.Key, g => (IReadOnlyList<string>)[.. g.Select(a => a.NodeId).Distinct(StringComparer.Ordinal).Order(StringComparer.Ordinal)], StringComparer.Ordinal);
        return new ClusterState
        {
            Revision = revision,
            ClusterId = info.Id,
            DataPathPort = info.DataPathPort,
            Nodes = nodes,
            Networks = networks,
            Ipsec = ipsec,
            Gossip = gossip,
            Peers = peers,
            Allocations = [.. allocations.Where(a => a.NodeId == callerId)],
        };
    }

    /// <inheritdoc/>
    public Task<AddressAllocation> AllocateAsync(AllocationRequest request, CancellationToken cancellationToken = default) =>
        manager.AllocateAsync(request with { NodeId = callerId }, cancellationToken);

    /// <inheritdoc/>
    public Task ReleaseAsync(ReleaseRequest request, CancellationToken cancellationToken = default) =>
        manager.ReleaseAsync(request.NetworkId, callerId, request.EndpointId, cancellationToken);

    /// <inheritdoc/>
    public Task<NetworkDefinition> CreateNetworkAsync(NetworkCreateRequest request, CancellationToken cancellationToken = default)
    {
        RequireManager("network create");
        return manager.CreateNetworkAsync(request, cancellationToken);
    }

    /// <inheritdoc/>
    public Task<NetworkDefinition> RemoveNetworkAsync(string nameOrId, CancellationToken cancellationToken = default)
    {
        RequireManager("network rm");
        return manager.RemoveNetworkAsync(nameOrId, cancellationToken);
    }

    /// <inheritdoc/>
    public Task<NodeRecord> SetRoleAsync(RoleChange change, CancellationToken cancellationToken = default)
    {
        RequireManager(change.Role == NodeRole.Manager ? "node promote" : "node demote");
        return manager.SetRoleAsync(change.Node, change.Role, cancellationToken);
    }

    /// <inheritdoc/>
    public Task<NodeRecord> RemoveNodeAsync(string node, bool force, CancellationToken cancellationToken = default)
    {
        RequireManager("node rm");
        return manager.RemoveNodeAsync(node, force, cancellationToken);
    }

    /// <inheritdoc/>
    public async Task<JoinTokenView> GetJoinTokenAsync(NodeRole role, bool rotate, CancellationToken cancellationToken = default)
    {
        RequireManager("swarm join-token");
        var info = await manager.GetInfoAsync(cancellationToken).ConfigureAwait(false)
            ?? throw new ControlException(ControlErrorCodes.NotFound, "this manager's store holds no cluster", "cluster");
        if (rotate) info = await manager.RotateTokenAsync(role, newToken(info.RootCertificatePem), cancellationToken).ConfigureAwait(false);
        return new JoinTokenView(role, info.TokenFor(role));
    }

    private void RequireManager(string what)
    {
        if (callerRole != NodeRole.Manager)
            throw new ControlException(ControlErrorCodes.PermissionDenied, $"{what} is for managers, and node {Control.Networks.ObjectIds.Short(callerId)} is a worker", "node");
    }
}
