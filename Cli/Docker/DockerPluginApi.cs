using System.Text.Json;
using System.Text.Json.Serialization;

namespace UserOverlay.Cli.Docker;

// Docker's legacy plugin protocol (moby's pkg/plugins, libnetwork's drivers/remote/api and ipams/remote/api): HTTP POST
// with a JSON body on /Method.Name, field names in PascalCase. Every response may carry Err; an error answer here is
// a non-200 status with {"Err": "..."}, which Docker's plugin client reads for every method, IPAM's included.

/// <summary>Any error answer.</summary>
public sealed record PluginError([property: JsonPropertyName("Err")] string Err);

/// <summary>An empty success (<c>{}</c>).</summary>
public sealed record PluginEmpty;

/// <summary>/Plugin.Activate.</summary>
public sealed record ActivateResponse(string[] Implements);

/// <summary>/NetworkDriver.GetCapabilities.</summary>
public sealed record DriverCapabilities(string Scope, string ConnectivityScope);

/// <summary>One address family's IPAM result, as Docker passes it to CreateNetwork.</summary>
public sealed record IpamData
{
    public string? AddressSpace { get; init; }
    /// <summary>The subnet, CIDR.</summary>
    public string? Pool { get; init; }
    /// <summary>The gateway with the subnet's prefix length, e.g. 198.18.1.1/24.</summary>
    public string? Gateway { get; init; }
    public Dictionary<string, string>? AuxAddresses { get; init; }
}

/// <summary>/NetworkDriver.CreateNetwork.</summary>
public sealed record CreateNetworkRequest
{
    public string? NetworkID { get; init; }
    /// <summary>com.docker.network.generic (the -o options), com.docker.network.enable_ipv6, com.docker.network.internal.</summary>
    public Dictionary<string, JsonElement>? Options { get; init; }
    public List<IpamData>? IPv4Data { get; init; }
    public List<IpamData>? IPv6Data { get; init; }
}

/// <summary>/NetworkDriver.DeleteNetwork.</summary>
public sealed record NetworkIdRequest
{
    public string? NetworkID { get; init; }
}

/// <summary>The interface of an endpoint: what Docker's IPAM gave, or what the driver answers.</summary>
public sealed record EndpointInterface
{
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] public string? Address { get; init; }
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] public string? AddressIPv6 { get; init; }
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] public string? MacAddress { get; init; }
}

/// <summary>/NetworkDriver.CreateEndpoint.</summary>
public sealed record CreateEndpointRequest
{
    public string? NetworkID { get; init; }
    public string? EndpointID { get; init; }
    public EndpointInterface? Interface { get; init; }
    public Dictionary<string, JsonElement>? Options { get; init; }
}

/// <summary>CreateEndpoint's answer: the MAC the driver chose when Docker gave none.</summary>
public sealed record CreateEndpointResponse([property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] EndpointInterface? Interface);

/// <summary>/NetworkDriver.DeleteEndpoint, Leave, EndpointOperInfo, Program/RevokeExternalConnectivity.</summary>
public sealed record EndpointIdRequest
{
    public string? NetworkID { get; init; }
    public string? EndpointID { get; init; }
    public Dictionary<string, JsonElement>? Options { get; init; }
}

/// <summary>EndpointOperInfo's answer.</summary>
public sealed record EndpointInfoResponse(Dictionary<string, string> Value);

/// <summary>/NetworkDriver.Join.</summary>
public sealed record JoinRequest
{
    public string? NetworkID { get; init; }
    public string? EndpointID { get; init; }
    /// <summary>The container's network namespace (a path in dockerd's mount namespace).</summary>
    public string? SandboxKey { get; init; }
    public Dictionary<string, JsonElement>? Options { get; init; }
}

/// <summary>The link Docker moves into the sandbox (SrcName, in the host's namespace) and the prefix of its new name there.</summary>
public sealed record InterfaceName(string SrcName, string DstPrefix);

/// <summary>A route Docker adds in the sandbox (RouteType 0: via NextHop, 1: connected).</summary>
public sealed record StaticRoute(string Destination, int RouteType, [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] string? NextHop);

/// <summary>Join's answer.</summary>
public sealed record JoinResponse
{
    public required InterfaceName InterfaceName { get; init; }
    public string Gateway { get; init; } = "";
    public string GatewayIPv6 { get; init; } = "";
    public IReadOnlyList<StaticRoute> StaticRoutes { get; init; } = [];
    /// <summary>True: Docker adds no docker_gwbridge for this endpoint.</summary>
    public bool DisableGatewayService { get; init; } = true;
}

/// <summary>/IpamDriver.GetCapabilities.</summary>
public sealed record IpamCapabilities(bool RequiresMACAddress, bool RequiresRequestReplay);

/// <summary>/IpamDriver.GetDefaultAddressSpaces.</summary>
public sealed record AddressSpacesResponse(string LocalDefaultAddressSpace, string GlobalDefaultAddressSpace);

/// <summary>/IpamDriver.RequestPool.</summary>
public sealed record RequestPoolRequest
{
    public string? AddressSpace { get; init; }
    /// <summary>--subnet, or empty.</summary>
    public string? Pool { get; init; }
    /// <summary>--ip-range, or empty.</summary>
    public string? SubPool { get; init; }
    /// <summary>--ipam-opt.</summary>
    public Dictionary<string, string>? Options { get; init; }
    public bool V6 { get; init; }
}

/// <summary>RequestPool's answer.</summary>
public sealed record RequestPoolResponse(string PoolID, string Pool, Dictionary<string, string> Data);

/// <summary>/IpamDriver.ReleasePool.</summary>
public sealed record ReleasePoolRequest
{
    public string? PoolID { get; init; }
}

/// <summary>/IpamDriver.RequestAddress.</summary>
public sealed record RequestAddressRequest
{
    public string? PoolID { get; init; }
    /// <summary>A specific address (--gateway, --ip), or empty.</summary>
    public string? Address { get; init; }
    /// <summary>RequestAddressType: com.docker.network.gateway for the gateway.</summary>
    public Dictionary<string, string>? Options { get; init; }
}

/// <summary>RequestAddress's answer: CIDR form.</summary>
public sealed record RequestAddressResponse(string Address, Dictionary<string, string> Data);

/// <summary>/IpamDriver.ReleaseAddress.</summary>
public sealed record ReleaseAddressRequest
{
    public string? PoolID { get; init; }
    public string? Address { get; init; }
}

/// <summary>The plugin protocol's JSON, source-generated (the binary is NativeAOT). Docker's names are PascalCase.</summary>
[JsonSourceGenerationOptions(PropertyNameCaseInsensitive = true)]
[JsonSerializable(typeof(PluginError))]
[JsonSerializable(typeof(PluginEmpty))]
[JsonSerializable(typeof(ActivateResponse))]
[JsonSerializable(typeof(DriverCapabilities))]
[JsonSerializable(typeof(CreateNetworkRequest))]
[JsonSerializable(typeof(NetworkIdRequest))]
[JsonSerializable(typeof(CreateEndpointRequest))]
[JsonSerializable(typeof(CreateEndpointResponse))]
[JsonSerializable(typeof(EndpointIdRequest))]
[JsonSerializable(typeof(EndpointInfoResponse))]
[JsonSerializable(typeof(JoinRequest))]
[JsonSerializable(typeof(JoinResponse))]
[JsonSerializable(typeof(IpamCapabilities))]
[JsonSerializable(typeof(AddressSpacesResponse))]
[JsonSerializable(typeof(RequestPoolRequest))]
[JsonSerializable(typeof(RequestPoolResponse))]
[JsonSerializable(typeof(ReleasePoolRequest))]
[JsonSerializable(typeof(RequestAddressRequest))]
[JsonSerializable(typeof(RequestAddressResponse))]
[JsonSerializable(typeof(ReleaseAddressRequest))]
[JsonSerializable(typeof(DockerPluginState))]
public sealed partial class DockerPluginJson : JsonSerializerContext;
