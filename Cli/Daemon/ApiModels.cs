using System.Text.Json.Serialization;
using UserOverlay.Control.Networks;
using UserOverlay.Router;

namespace UserOverlay.Cli.Daemon;

/// <summary>Body of <c>POST /v1/networks/{network}/connect</c>.</summary>
/// <param name="Netns">The namespace: an <c>ip netns</c> name or a path such as /proc/PID/ns/net.</param>
/// <param name="Name">The endpoint's name on the network; default the namespace.</param>
/// <param name="Interface">The interface name inside the namespace; default eth0.</param>
/// <param name="Address">A fixed IPv4 address in the subnet; default the next free one.</param>
/// <param name="Mac">A fixed MAC; default 02:00 + the address.</param>
/// <param name="Aliases">Extra DNS names.</param>
public sealed record ConnectRequest(string? Netns, string? Name = null, string? Interface = null, string? Address = null, string? Mac = null, IReadOnlyList<string>? Aliases = null);

/// <summary>Body of <c>POST /v1/networks/{network}/disconnect</c>: the namespace, or the endpoint's name (or id).</summary>
public sealed record DisconnectRequest(string? Netns = null, string? Name = null);

/// <summary>An endpoint as the API returns it.</summary>
public sealed record EndpointView(string Id, string Network, string NetworkId, string Name, string Netns, string Interface,
    string MacAddress, string Ipv4Address, IReadOnlyList<string> Aliases)
{
    /// <summary>The network's gateway, where the router answers DNS for the network's names (null: the network has none).</summary>
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public string? Gateway { get; init; }

    /// <summary>The view of <paramref name="e"/> on <paramref name="network"/>.</summary>
    public static EndpointView From(NetworkDefinition network, EndpointRecord e) =>
        new(e.Id, network.Name, network.Id, e.Name, e.Netns, e.Interface, e.Mac.ToString(),
            $"{VtepEndpoint.FormatAddress(e.Address)}/{e.PrefixLength}", e.Aliases)
        { Gateway = network.Gateway is uint g ? VtepEndpoint.FormatAddress(g) : null };
}

/// <summary>One network of <see cref="WorkloadCreateRequest"/>.</summary>
public sealed record WorkloadNetworkRequest(string? Network, string? Address = null, IReadOnlyList<string>? Aliases = null);

/// <summary>Body of <c>POST /v1/workloads</c>.</summary>
/// <param name="Name">The workload's name (its namespace is uo-NAME); default a random one.</param>
/// <param name="Networks">The networks to attach, in order.</param>
/// <param name="Detached">False: the daemon removes the workload when <paramref name="ClientPid"/> exits.</param>
/// <param name="ClientPid">The process whose exit ends a non-detached workload; default the caller (SO_PEERCRED).</param>
public sealed record WorkloadCreateRequest(string? Name = null, IReadOnlyList<WorkloadNetworkRequest>? Networks = null, bool Detached = false, int? ClientPid = null);

/// <summary>A workload as the API returns it.</summary>
public sealed record WorkloadView(string Name, string Netns, string NetnsPath, DateTimeOffset Created, bool Detached,
    [property: JsonIgnore(Condition = JsonIgnoreCondition.Never)] int? ClientPid, IReadOnlyList<EndpointView> Endpoints);

/// <summary>A workload as the daemon stores it (STATE/workloads/NAME.json).</summary>
/// <param name="Name">Its name.</param>
/// <param name="Netns">Its namespace (uo-NAME).</param>
/// <param name="Created">When it was created.</param>
/// <param name="Detached">Whether it outlives its client.</param>
/// <param name="ClientPid">The client's PID (non-detached).</param>
/// <param name="ClientStartTime">The client's start time (/proc/PID/stat field 22), so a reused PID is not taken for it.</param>
/// <param name="MountNamespace">The mount namespace ("mnt:[INODE]") the namespace's bind mount was made in, when not the daemon's.</param>
/// <param name="CreatorPid">The process that asked for the workload (its mount namespace is that one).</param>
public sealed record WorkloadRecord(string Name, string Netns, DateTimeOffset Created, bool Detached, int? ClientPid, ulong? ClientStartTime,
    string? MountNamespace = null, int? CreatorPid = null);
