using System.Globalization;
using System.Text.Json.Serialization;
using UserOverlay.Router;

namespace UserOverlay.Control.Networks;

/// <summary>
/// One element of <c>network inspect</c>'s JSON array, with the field names of Docker's (moby api/types/network), so
/// scripts written against <c>docker network inspect</c> keep working. Serialise with <see cref="DockerJson"/>.
/// </summary>
public sealed record NetworkInspect
{
    [JsonPropertyName("Name")] public required string Name { get; init; }
    [JsonPropertyName("Id")] public required string Id { get; init; }
    /// <summary>RFC 3339 in UTC with fractional seconds, as Docker writes it.</summary>
    [JsonPropertyName("Created")] public required string Created { get; init; }
    [JsonPropertyName("Scope")] public required string Scope { get; init; }
    [JsonPropertyName("Driver")] public required string Driver { get; init; }
    [JsonPropertyName("EnableIPv6")] public bool EnableIPv6 { get; init; }
    [JsonPropertyName("IPAM")] public required IpamInspect Ipam { get; init; }
    [JsonPropertyName("Internal")] public bool Internal { get; init; }
    [JsonPropertyName("Attachable")] public bool Attachable { get; init; }
    [JsonPropertyName("Ingress")] public bool Ingress { get; init; }
    [JsonPropertyName("ConfigFrom")] public ConfigReference ConfigFrom { get; init; } = new("");
    [JsonPropertyName("ConfigOnly")] public bool ConfigOnly { get; init; }
    /// <summary>The local endpoints by endpoint id (Docker keys them by container id; here the endpoint is the workload).</summary>
    [JsonPropertyName("Containers")] public required IReadOnlyDictionary<string, EndpointInspect> Containers { get; init; }
    [JsonPropertyName("Options")] public required IReadOnlyDictionary<string, string> Options { get; init; }
    [JsonPropertyName("Labels")] public required IReadOnlyDictionary<string, string> Labels { get; init; }
    /// <summary>A cluster network's hosts that have endpoints on it (Docker's swarm-scope <c>Peers</c>); null on a host's own network.</summary>
    [JsonPropertyName("Peers"), JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] public IReadOnlyList<PeerInspect>? Peers { get; init; }

    /// <summary>The inspect view of <paramref name="network"/> with its <paramref name="endpoints"/>.</summary>
    public static NetworkInspect From(NetworkDefinition network, IEnumerable<EndpointRecord> endpoints) => new()
    {
        Name = network.Name,
        Id = network.Id,
        Created = network.Created.UtcDateTime.ToString("yyyy-MM-dd'T'HH:mm:ss.fffffff'Z'", CultureInfo.InvariantCulture),
        Scope = network.Scope,
        Driver = network.Driver,
        Ipam = new IpamInspect
        {
            Config =
            [
                new IpamConfigInspect
                {
                    Subnet = network.Subnet.ToString(),
                    IPRange = network.IpRange?.ToString(),
                    Gateway = network.Gateway is uint g ? VtepEndpoint.FormatAddress(g) : "",
                    AuxiliaryAddresses = network.AuxAddresses.Count == 0 ? null
                        : network.AuxAddresses.ToDictionary(a => a.Name, a => VtepEndpoint.FormatAddress(a.Address), StringComparer.Ordinal),
                },
            ],
        },
        Internal = network.Internal,
        Attachable = network.Attachable,
        Containers = endpoints.ToDictionary(e => e.Id, e => new EndpointInspect
        {
            Name = e.Name,
            EndpointID = e.Id,
            MacAddress = e.Mac.ToString(),
            IPv4Address = $"{VtepEndpoint.FormatAddress(e.Address)}/{e.PrefixLength}",
        }, StringComparer.Ordinal),
        Options = network.Options,
        Labels = network.Labels,
    };
}

/// <summary>Docker's IPAM block: the built-in driver and one config per subnet.</summary>
public sealed record IpamInspect
{
    [JsonPropertyName("Driver")] public string Driver { get; init; } = "default";
    /// <summary>IPAM driver options; null, as Docker shows for the default driver.</summary>
    [JsonPropertyName("Options")] public IReadOnlyDictionary<string, string>? Options { get; init; }
    [JsonPropertyName("Config")] public required IReadOnlyList<IpamConfigInspect> Config { get; init; }
}

/// <summary>One subnet of Docker's IPAM config; empty fields are left out, as Docker's omitempty does.</summary>
public sealed record IpamConfigInspect
{
    [JsonPropertyName("Subnet")] public required string Subnet { get; init; }
    [JsonPropertyName("IPRange"), JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] public string? IPRange { get; init; }
    [JsonPropertyName("Gateway")] public required string Gateway { get; init; }
    [JsonPropertyName("AuxiliaryAddresses"), JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public IReadOnlyDictionary<string, string>? AuxiliaryAddresses { get; init; }
}

/// <summary>An endpoint in Docker's <c>Containers</c> map.</summary>
public sealed record EndpointInspect
{
    [JsonPropertyName("Name")] public required string Name { get; init; }
    [JsonPropertyName("EndpointID")] public required string EndpointID { get; init; }
    [JsonPropertyName("MacAddress")] public required string MacAddress { get; init; }
    /// <summary>Address and prefix length, e.g. "198.18.0.2/24".</summary>
    [JsonPropertyName("IPv4Address")] public required string IPv4Address { get; init; }
    [JsonPropertyName("IPv6Address")] public string IPv6Address { get; init; } = "";
}

/// <summary>A host of a cluster network, in Docker's <c>Peers</c> list.</summary>
/// <param name="Name">The node's name.</param>
/// <param name="IP">Its data path (underlay) address.</param>
public sealed record PeerInspect([property: JsonPropertyName("Name")] string Name, [property: JsonPropertyName("IP")] string IP);

/// <summary>Docker's <c>ConfigFrom</c>: the config-only network this one was made from (none here).</summary>
public sealed record ConfigReference([property: JsonPropertyName("Network")] string Network);

/// <summary>
/// Docker-shaped JSON of the network API, source-generated (the CLI is NativeAOT): <c>network inspect</c>'s array,
/// indented by four spaces as <c>docker network inspect</c> prints it.
/// </summary>
[JsonSourceGenerationOptions(WriteIndented = true, IndentSize = 4)]
[JsonSerializable(typeof(IReadOnlyList<NetworkInspect>))]
[JsonSerializable(typeof(NetworkInspect))]
internal sealed partial class DockerJson : JsonSerializerContext;
