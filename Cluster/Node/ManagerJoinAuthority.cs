using UserOverlay.Cluster.Manager;
using UserOverlay.Cluster.Store;
using UserOverlay.Cluster.Transport;
using UserOverlay.Control.Networks;

namespace UserOverlay.Cluster.Node;

/// <summary>
/// The managers' <see cref="IJoinAuthority"/>: a join is <see cref="ClusterManager.AdmitAsync"/> (the token compared in
/// constant time against the cluster's two, the node recorded with the role its token gives), and a caller's role is
/// its node record's — so a removed node is refused at once and a demotion takes effect at once.
/// </summary>
/// <param name="manager">The managers' state.</param>
public sealed class ManagerJoinAuthority(ClusterManager manager) : IJoinAuthority
{
    /// <inheritdoc/>
    public async Task<JoinDecision> JoinAsync(JoinRequest request, CancellationToken cancellationToken)
    {
        try
        {
            var node = await manager.AdmitAsync(request.Token.ToString(), new NodeAdmission(request.Hostname, request.AdvertiseAddress, request.DataPathAddress), cancellationToken).ConfigureAwait(false);
            return JoinDecision.Admit(node.Id, node.Role);
        }
        catch (ControlException e)
        {
            return e.Code switch
            {
                ControlErrorCodes.PermissionDenied => JoinDecision.Refuse(e.Message.Contains("rotated", StringComparison.Ordinal) ? JoinRefusal.RotatedToken : JoinRefusal.BadToken, e.Message),
                ControlErrorCodes.Conflict => JoinDecision.Refuse(JoinRefusal.Conflict, e.Message),
                ControlErrorCodes.InvalidArgument => JoinDecision.Refuse(JoinRefusal.Invalid, e.Message),
                _ => JoinDecision.Refuse(JoinRefusal.Unavailable, e.Message),
            };
        }
        catch (StoreException e)
        {
            return JoinDecision.Refuse(JoinRefusal.Unavailable, $"the managers' store cannot admit a node now ({e.Message}); retry in a moment");
        }
    }

    /// <inheritdoc/>
    public async Task<NodeRole?> CurrentRoleAsync(string nodeId, CancellationToken cancellationToken)
    {
        var r = await manager.Store.GetAsync(ClusterKeys.Node(nodeId), cancellationToken).ConfigureAwait(false);
        return r.Kvs.Count == 0 ? null : ClusterManager.Decode(r.Kvs[0], ClusterJson.Default.NodeRecord).Role;
    }
}
