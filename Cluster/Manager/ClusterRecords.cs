using System.Text.Json.Serialization;
using UserOverlay.Control.Networks;
using UserOverlay.Control.State;
using UserOverlay.Router;

namespace UserOverlay.Cluster.Manager;

/// <summary>A node's role, which its certificate carries (the OU) and its join token chose.</summary>
[JsonConverter(typeof(JsonStringEnumConverter<NodeRole>))]
public enum NodeRole
{
    /// <summary>Runs a router and attaches workloads; reads the cluster's state from the managers.</summary>
    Worker,
    /// <summary>Also keeps the cluster's state (a member of the replicated store) and serves the control API.</summary>
    Manager,
}

/// <summary>
/// The cluster itself: one value at <see cref="ClusterKeys.Info"/>, written by <c>swarm init</c> and changed by token
/// rotation. It holds the root CA's key, so only managers read it (the store is theirs).
/// </summary>
public sealed record ClusterInfo
{
    /// <summary>The cluster id (the O of every node certificate).</summary>
    public required string Id { get; init; }

    /// <summary>When <c>swarm init</c> made it.</summary>
    public required DateTimeOffset Created { get; init; }

    /// <summary>The root CA certificate, PEM (its digest is in every join token).</summary>
    public required string RootCertificatePem { get; init; }

    /// <summary>The root CA's private key, PEM (PKCS#8).</summary>
    public required string RootKeyPem { get; init; }

    /// <summary>The current worker join token.</summary>
    public required string WorkerToken { get; init; }

    /// <summary>The current manager join token.</summary>
    public required string ManagerToken { get; init; }

    /// <summary>Where subnets of networks created without <c>--subnet</c> come from, in order.</summary>
    public required IReadOnlyList<Ipv4Prefix> DefaultAddressPools { get; init; }

    /// <summary>The prefix length of subnets cut from <see cref="DefaultAddressPools"/>.</summary>
    public int DefaultSubnetLength { get; init; } = 24;

    /// <summary>The UDP port of VXLAN on every node (fixed at init, as swarm's <c>--data-path-port</c>).</summary>
    public int DataPathPort { get; init; } = 4789;

    /// <summary>How often the managers rotate the network and gossip keys.</summary>
    public TimeSpan KeyRotationInterval { get; init; } = TimeSpan.FromHours(12);

    /// <summary>The token for <paramref name="role"/>.</summary>
    public string TokenFor(NodeRole role) => role == NodeRole.Manager ? ManagerToken : WorkerToken;
}

/// <summary>A node of the cluster, at <see cref="ClusterKeys.Node"/>.</summary>
public sealed record NodeRecord
{
    /// <summary>The node id (the CN of its certificate).</summary>
    public required string Id { get; init; }

    /// <summary>The host name it joined with (what <c>node ls</c> shows; unique in the cluster).</summary>
    public required string Hostname { get; init; }

    /// <summary>Its role.</summary>
    public required NodeRole Role { get; init; }

    /// <summary>Where its control API (and, for a manager, its store member) is reached: "IP:PORT".</summary>
    public required string ControlAddress { get; init; }

    /// <summary>Its underlay address for VXLAN and ESP (the VTEP).</summary>
    public required string DataPathAddress { get; init; }

    /// <summary>When it joined.</summary>
    public required DateTimeOffset Joined { get; init; }
}

/// <summary>An address handed out by the cluster's IPAM, at <see cref="ClusterKeys.Allocation"/>.</summary>
public sealed record AddressAllocation
{
    /// <summary>The network.</summary>
    public required string NetworkId { get; init; }

    /// <summary>The address.</summary>
    [JsonConverter(typeof(Ipv4AddressJsonConverter))]
    public required uint Address { get; init; }

    /// <summary>The node whose endpoint holds it (its addresses are released when the node is removed).</summary>
    public required string NodeId { get; init; }

    /// <summary>The endpoint's id on that node.</summary>
    public required string EndpointId { get; init; }

    /// <summary>The endpoint's name (the workload's), for messages and <c>network inspect</c>.</summary>
    public required string Name { get; init; }

    /// <summary>The endpoint's MAC (derived from the address unless given).</summary>
    public required MacAddress Mac { get; init; }

    /// <summary>When it was handed out.</summary>
    public required DateTimeOffset Created { get; init; }
}

/// <summary>One key of a <see cref="KeyRing"/>.</summary>
/// <param name="Generation">Its number in the ring's sequence (1 for the first), which names it.</param>
/// <param name="Material">The secret (32 bytes).</param>
/// <param name="Created">When the managers made it.</param>
public sealed record ClusterKey(long Generation, byte[] Material, DateTimeOffset Created);

/// <summary>
/// The keys of one subsystem (<see cref="KeyRing.Gossip"/> or <see cref="KeyRing.Ipsec"/>), as swarm keeps them: the
/// newest few, oldest first; nodes send with <see cref="SendKey"/> and accept all of them, so a rotation that
/// reaches nodes at different moments loses nothing.
/// </summary>
public sealed record KeyRing
{
    /// <summary>The gossip subsystem's name.</summary>
    public const string Gossip = "networking:gossip";

    /// <summary>The ESP subsystem's name.</summary>
    public const string Ipsec = "networking:ipsec";

    /// <summary>The subsystem.</summary>
    public required string Subsystem { get; init; }

    /// <summary>The keys, oldest first (at most <see cref="ClusterManagerOptions.KeyRingSize"/>).</summary>
    public required IReadOnlyList<ClusterKey> Keys { get; init; }

    /// <summary>
    /// The key to send with: the second newest once the ring holds two or more, else the only one. The newest key is
    /// for receiving only during its first rotation period, so every node has it before any node sends with it, and
    /// a rotation loses nothing although nodes learn the new ring at different moments (swarm's rule).
    /// </summary>
    [JsonIgnore]
    public ClusterKey SendKey => Keys.Count >= 2 ? Keys[^2] : Keys[0];

    /// <summary>The newest key (the one a rotation added last).</summary>
    [JsonIgnore]
    public ClusterKey Newest => Keys[^1];
}

/// <summary>
/// The cluster's objects as JSON values of the store: snake_case, source-generated (NativeAOT), with the state
/// converters of the network model.
/// </summary>
[JsonSourceGenerationOptions(PropertyNamingPolicy = JsonKnownNamingPolicy.SnakeCaseLower,
    RespectNullableAnnotations = true, RespectRequiredConstructorParameters = true,
    Converters = [typeof(Ipv4PrefixJsonConverter), typeof(MacAddressJsonConverter)])]
[JsonSerializable(typeof(ClusterInfo))]
[JsonSerializable(typeof(NodeRecord))]
[JsonSerializable(typeof(NetworkDefinition))]
[JsonSerializable(typeof(AddressAllocation))]
[JsonSerializable(typeof(KeyRing))]
internal sealed partial class ClusterJson : JsonSerializerContext;
