using System.Security.Cryptography;
using System.Text.Json.Serialization;
using UserOverlay.Control.State;
using UserOverlay.Router;

namespace UserOverlay.Control.Networks;

/// <summary>
/// An overlay network as the control plane keeps it: what <c>network create</c> made, after validation and
/// defaulting (<see cref="NetworkValidator"/>). Immutable; stored as JSON by an <see cref="INetworkStore"/>.
/// Addresses are host-order integers, as in <see cref="RouterOptions"/>.
/// </summary>
public sealed record NetworkDefinition
{
    /// <summary>64 lowercase hex characters from a CSPRNG, like Docker's network ids (<see cref="ObjectIds.New"/>).</summary>
    public required string Id { get; init; }

    /// <summary>Unique name on the host.</summary>
    public required string Name { get; init; }

    /// <summary>Always "overlay".</summary>
    public string Driver { get; init; } = NetworkValidator.OverlayDriver;

    /// <summary>When the network was created (UTC).</summary>
    public required DateTimeOffset Created { get; init; }

    /// <summary>"local": the network is this host's; the cluster step adds "swarm".</summary>
    public string Scope { get; init; } = "local";

    /// <summary>The network's IPv4 subnet.</summary>
    public required Ipv4Prefix Subnet { get; init; }

    /// <summary>
    /// The gateway address, reserved (never given to an endpoint); the router answers ARP and ping for it. Default: the
    /// subnet's first usable address. Null only for a network of the configuration file that names none (files written
    /// before gateways existed keep working, an endpoint at .1 included).
    /// </summary>
    [JsonConverter(typeof(Ipv4AddressJsonConverter))]
    public required uint? Gateway { get; init; }

    /// <summary>The part of the subnet addresses are allocated from; null for the whole subnet.</summary>
    public Ipv4Prefix? IpRange { get; init; }

    /// <summary>Addresses reserved by name (Docker's <c>--aux-address</c>), in the order given.</summary>
    public IReadOnlyList<AuxAddress> AuxAddresses { get; init; } = [];

    /// <summary>VXLAN network identifier, 1 to 16777215, unique on the host.</summary>
    public required uint Vni { get; init; }

    /// <summary>Inner MTU of the endpoints; null for the data path's default.</summary>
    public int? Mtu { get; init; }

    /// <summary>Carried only as ESP between hosts (Docker's <c>--opt encrypted</c>).</summary>
    public bool Encrypted { get; init; }

    /// <summary>No route to the outside (Docker's <c>--internal</c>); recorded for the data plane.</summary>
    public bool Internal { get; init; }

    /// <summary>Standalone workloads may attach (Docker's <c>--attachable</c>). Recorded; enforced only by the cluster step, as Docker enforces it only in swarm scope.</summary>
    public bool Attachable { get; init; }

    /// <summary>User labels.</summary>
    public IReadOnlyDictionary<string, string> Labels { get; init; } = new Dictionary<string, string>();

    /// <summary>Driver options as Docker's inspect shows them (see <see cref="NetworkValidator.VxlanIdListOption"/> and the others).</summary>
    public IReadOnlyDictionary<string, string> Options { get; init; } = new Dictionary<string, string>();

    /// <summary>
    /// True when the daemon's configuration file declares the network (<see cref="NetworkManager.Seed"/> made it, and
    /// makes it again at every start); false when the API created it.
    /// </summary>
    public bool FromConfig { get; init; }

    /// <summary>The data path's description of this network.</summary>
    public NetworkOptions ToNetworkOptions() => new() { Name = Name, Vni = Vni, Subnet = Subnet, Mtu = Mtu, Encrypted = Encrypted, Gateway = Gateway, Internal = Internal };
}

/// <summary>A named address reserved in a network's subnet.</summary>
public sealed record AuxAddress(string Name, [property: JsonConverter(typeof(Ipv4AddressJsonConverter))] uint Address);

/// <summary>
/// One workload's attachment to a network (Docker's endpoint): a TAP device named <see cref="Interface"/> in the
/// network namespace <see cref="Netns"/>, with its address and MAC. Immutable; stored by an <see cref="INetworkStore"/>.
/// </summary>
public sealed record EndpointRecord
{
    /// <summary>64 lowercase hex characters (<see cref="ObjectIds.New"/>).</summary>
    public required string Id { get; init; }

    /// <summary>The <see cref="NetworkDefinition.Id"/> of the network.</summary>
    public required string NetworkId { get; init; }

    /// <summary>The workload's name (Docker's container name); by default the namespace. Unique on its network.</summary>
    public required string Name { get; init; }

    /// <summary>The network namespace: an <c>ip netns</c> name or a path such as /proc/PID/ns/net. At most one endpoint per network.</summary>
    public required string Netns { get; init; }

    /// <summary>The interface name inside the namespace (default eth0).</summary>
    public required string Interface { get; init; }

    /// <summary>The interface's MAC, unicast and unique on the network.</summary>
    public required MacAddress Mac { get; init; }

    /// <summary>The IPv4 address (host order), inside the network's subnet.</summary>
    [JsonConverter(typeof(Ipv4AddressJsonConverter))]
    public required uint Address { get; init; }

    /// <summary>The prefix length of the address: the subnet's.</summary>
    public required int PrefixLength { get; init; }

    /// <summary>Extra DNS names of the workload on this network (Docker's <c>--alias</c>).</summary>
    public IReadOnlyList<string> Aliases { get; init; } = [];

    /// <summary>When the endpoint was attached (UTC); orders the endpoints when a pool is rebuilt.</summary>
    public required DateTimeOffset Created { get; init; }

    /// <summary>True when the configuration file declares the endpoint (see <see cref="NetworkDefinition.FromConfig"/>); false when the API attached it.</summary>
    public bool FromConfig { get; init; }

    /// <summary>
    /// True when a container runtime took the TAP (Docker's remote driver): it was made in the router's namespace under
    /// <see cref="Interface"/> and moved into the workload by the runtime (<see cref="EndpointOptions.HandOff"/>);
    /// <see cref="Netns"/> names the workload's namespace. <see cref="NetworkManager.Resume"/> leaves such endpoints to
    /// the runtime's plugin, which restores them in the workload's namespace.
    /// </summary>
    public bool HandOff { get; init; }

    /// <summary>The data path's description of this endpoint on <paramref name="network"/>.</summary>
    public EndpointOptions ToEndpointOptions(NetworkDefinition network) => new()
    {
        Network = network.Name,
        Netns = Netns,
        Interface = Interface,
        Address = Address,
        PrefixLength = PrefixLength,
        Mac = Mac,
        HandOff = HandOff,
    };
}

/// <summary>Ids of networks and endpoints.</summary>
public static class ObjectIds
{
    /// <summary>Length of an id: 32 random bytes in hex, as Docker's.</summary>
    public const int Length = 64;

    /// <summary>A new id: 64 lowercase hex characters from <see cref="RandomNumberGenerator"/>.</summary>
    public static string New() => RandomNumberGenerator.GetHexString(Length, lowercase: true);

    /// <summary>True for 64 lowercase hex characters.</summary>
    public static bool IsValid(string? id) => id is { Length: Length } && IsHex(id);

    /// <summary>True when <paramref name="s"/> is non-empty lowercase hex (a possible id prefix).</summary>
    public static bool IsHex(string s) => s.Length > 0 && s.All(char.IsAsciiHexDigitLower);

    /// <summary>The 12-character form <c>network ls</c> shows.</summary>
    public static string Short(string id) => id.Length > 12 ? id[..12] : id;
}
