using UserOverlay.Cluster.Manager;
using UserOverlay.Control.Networks;

namespace UserOverlay.Cluster.Node;

/// <summary>
/// What a node asks of the cluster's managers, as one node (the caller is fixed by the channel: over 2377 the node
/// certificate names it; in process, the manager's own node). Two implementations: <see cref="ManagerApi"/> on a
/// manager (the operations of <see cref="ClusterManager"/> for one caller — also the in-process double of the
/// transport in tests) and the HTTPS client a worker uses (<see cref="HttpClusterApi"/>), which carries the same calls
/// over mutual TLS.
/// <para>
/// Errors: <see cref="ControlException"/> with the manager's code and sentence (a refusal), or with
/// <see cref="ControlErrorCodes.Unavailable"/> when no manager answers. Operations marked "managers only" are refused
/// with <see cref="ControlErrorCodes.PermissionDenied"/> for a worker.
/// </para>
/// </summary>
public interface IClusterApi
{
    /// <summary>Whom this talks to, for messages ("the manager at 192.0.2.1:2377", "this manager").</summary>
    string Peer { get; }

    /// <summary>
    /// The state as of a revision after <paramref name="afterRevision"/>: at once when the managers' state changed
    /// since, else once it does or <paramref name="wait"/> has passed (then the same revision comes back).
    /// </summary>
    Task<ClusterState> GetStateAsync(long afterRevision, TimeSpan wait, CancellationToken cancellationToken = default);

    /// <summary>Reserves an address on a network for one of the caller's endpoints (<see cref="ClusterManager.AllocateAsync"/>; its node id is the caller's).</summary>
    Task<AddressAllocation> AllocateAsync(AllocationRequest request, CancellationToken cancellationToken = default);

    /// <summary>Gives back the address one of the caller's endpoints holds; succeeds when it holds none.</summary>
    Task ReleaseAsync(ReleaseRequest request, CancellationToken cancellationToken = default);

    /// <summary>Creates a network for the whole cluster (managers only).</summary>
    Task<NetworkDefinition> CreateNetworkAsync(NetworkCreateRequest request, CancellationToken cancellationToken = default);

    /// <summary>Removes a network of the cluster; refused while endpoints hold addresses on it (managers only).</summary>
    Task<NetworkDefinition> RemoveNetworkAsync(string nameOrId, CancellationToken cancellationToken = default);

    /// <summary>Changes a node's role (managers only).</summary>
    Task<NodeRecord> SetRoleAsync(RoleChange change, CancellationToken cancellationToken = default);

    /// <summary>Removes a node and releases its addresses (managers only).</summary>
    Task<NodeRecord> RemoveNodeAsync(string node, bool force, CancellationToken cancellationToken = default);

    /// <summary>A join token; with <paramref name="rotate"/> a new one first, the old one then refused (managers only).</summary>
    Task<JoinTokenView> GetJoinTokenAsync(NodeRole role, bool rotate, CancellationToken cancellationToken = default);
}
