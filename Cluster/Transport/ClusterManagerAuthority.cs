using UserOverlay.Cluster.Manager;

namespace UserOverlay.Cluster.Transport;

/// <summary>
/// The join authority of a manager: <see cref="ClusterManager.AdmitAsync"/> decides joins (it compares the token
/// with both current tokens in constant time, records the node, and refuses a rotated token or a taken host name
/// with a <see cref="UserOverlay.Control.Networks.ControlException"/> the server maps), and the node's record in
/// the store says its current role (none: removed). Nothing is cached: each call reads the store, so with
/// <see cref="ClusterServerOptions.VerifyCallers"/> every authenticated request costs one read.
/// Thread-safety: as <see cref="ClusterManager"/> (all members concurrent).
/// </summary>
public sealed class ClusterManagerAuthority(ClusterManager manager) : IJoinAuthority
{
    /// <inheritdoc/>
    public async Task<JoinDecision> JoinAsync(JoinRequest request, CancellationToken cancellationToken)
    {
        var node = await manager.AdmitAsync(request.Token.ToString(),
            new NodeAdmission(request.Hostname, request.AdvertiseAddress, request.DataPathAddress), cancellationToken).ConfigureAwait(false);
        return JoinDecision.Admit(node.Id, node.Role);
    }

    /// <inheritdoc/>
    public async Task<NodeRole?> CurrentRoleAsync(string nodeId, CancellationToken cancellationToken)
    {
        // By exact id (GetNodeAsync would also match a host name or an id prefix).
        var r = await manager.Store.GetAsync(ClusterKeys.Node(nodeId), cancellationToken).ConfigureAwait(false);
        return r.Kvs.Count == 0 ? null : ClusterManager.Decode(r.Kvs[0], ClusterJson.Default.NodeRecord).Role;
    }
}
