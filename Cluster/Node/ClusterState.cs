using System.Text.Json.Serialization;
using UserOverlay.Cluster.Manager;
using UserOverlay.Control.Networks;

namespace UserOverlay.Cluster.Node;

/// <summary>
/// What a node needs of the managers' state, as of one store revision: the cluster's nodes (for gossip and for
/// <c>node ls</c>), its networks (every node serves them all), the key rings (network encryption and gossip), which
/// nodes have endpoints on each network (inspect's <c>Peers</c>), and the calling node's own address allocations (so
/// that it can give back those it no longer uses). A node asks for it again with the revision it holds and gets an
/// answer once something changed (<see cref="IClusterApi.GetStateAsync"/>), so a node that was away catches up in one
/// call, whatever it missed.
/// </summary>
public sealed record ClusterState
{
    /// <summary>The store revision this state was read at; ask again with it to wait for the next change.</summary>
    public required long Revision { get; init; }

    /// <summary>The cluster's id.</summary>
    public required string ClusterId { get; init; }

    /// <summary>The UDP port of the VXLAN data path, fixed at init.</summary>
    public required int DataPathPort { get; init; }

    /// <summary>Every node, by host name.</summary>
    public required IReadOnlyList<NodeRecord> Nodes { get; init; }

    /// <summary>Every network of the cluster, oldest first.</summary>
    public required IReadOnlyList<NetworkDefinition> Networks { get; init; }

    /// <summary>The ring of network-encryption keys (<see cref="KeyRing.Ipsec"/>).</summary>
    public required KeyRing Ipsec { get; init; }

    /// <summary>The ring of gossip keys (<see cref="KeyRing.Gossip"/>).</summary>
    public required KeyRing Gossip { get; init; }

    /// <summary>Per network id, the ids of the nodes holding addresses on it.</summary>
    public required IReadOnlyDictionary<string, IReadOnlyList<string>> Peers { get; init; }

    /// <summary>The calling node's own allocations.</summary>
    public required IReadOnlyList<AddressAllocation> Allocations { get; init; }
}

/// <summary>What <c>swarm join</c> sends, besides the token and the CSR: how the others reach the joining node.</summary>
/// <param name="Hostname">Its host name (unique in the cluster).</param>
/// <param name="ControlAddress">IP:PORT of its control port (a manager's is dialled by the others).</param>
/// <param name="DataPathAddress">Its underlay address (VXLAN and gossip).</param>
public sealed record JoinInfo(string Hostname, string ControlAddress, string DataPathAddress);

/// <summary>A request to release an address.</summary>
/// <param name="NetworkId">The network's id.</param>
/// <param name="EndpointId">The endpoint the address was reserved for.</param>
public sealed record ReleaseRequest(string NetworkId, string EndpointId);

/// <summary>A join token, as <c>swarm join-token</c> shows it.</summary>
/// <param name="Role">The role a node joining with it gets.</param>
/// <param name="Token">The token.</param>
public sealed record JoinTokenView(NodeRole Role, string Token);

/// <summary>A change of a node's role.</summary>
/// <param name="Node">The node's id or host name.</param>
/// <param name="Role">Its new role.</param>
public sealed record RoleChange(string Node, NodeRole Role);

/// <summary>An error a manager answers with: a stable code (<see cref="ControlErrorCodes"/>) and one sentence.</summary>
/// <param name="Code">The code.</param>
/// <param name="Message">The sentence.</param>
/// <param name="Field">The request field at fault, if any.</param>
public sealed record ClusterError(string Code, string Message, string? Field = null);

/// <summary>JSON of the node ↔ manager protocol (snake_case, source-generated for ahead-of-time compilation).</summary>
[JsonSourceGenerationOptions(PropertyNamingPolicy = JsonKnownNamingPolicy.SnakeCaseLower,
    DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull,
    RespectNullableAnnotations = true,
    Converters = [typeof(UserOverlay.Control.State.Ipv4PrefixJsonConverter), typeof(UserOverlay.Control.State.MacAddressJsonConverter)])]
[JsonSerializable(typeof(ClusterState))]
[JsonSerializable(typeof(AllocationRequest))]
[JsonSerializable(typeof(AddressAllocation))]
[JsonSerializable(typeof(ReleaseRequest))]
[JsonSerializable(typeof(NetworkCreateRequest))]
[JsonSerializable(typeof(NetworkDefinition))]
[JsonSerializable(typeof(List<NetworkDefinition>))]
[JsonSerializable(typeof(NodeRecord))]
[JsonSerializable(typeof(List<NodeRecord>))]
[JsonSerializable(typeof(JoinTokenView))]
[JsonSerializable(typeof(RoleChange))]
[JsonSerializable(typeof(ClusterError))]
internal sealed partial class ClusterProtocolJson : JsonSerializerContext;
