using System.Text.Json.Serialization;

namespace UserOverlay.Cli.Client;

// The client's side of the run-time network routes (contract: docs of ControlApi; requests and answers in
// snake_case). The network bodies are the Control library's own types (NetworkCreateRequest, NetworkInspect).

/// <summary><c>POST /v1/networks/{network}/connect</c>: attach a namespace.</summary>
public sealed record ConnectRequest
{
    public required string Netns { get; init; }
    public string? Name { get; init; }
    public string? Interface { get; init; }
    public string? Address { get; init; }
    public string? Mac { get; init; }
    public IReadOnlyList<string>? Aliases { get; init; }
}

/// <summary><c>POST /v1/networks/{network}/disconnect</c>: detach the endpoint of a namespace.</summary>
public sealed record DisconnectRequest(string Netns);

/// <summary>One workload's attachment to one network, as the daemon answers it.</summary>
public sealed record EndpointView
{
    public string Id { get; init; } = "";
    public string Network { get; init; } = "";
    public string NetworkId { get; init; } = "";
    public string Name { get; init; } = "";
    public string Netns { get; init; } = "";
    public string Interface { get; init; } = "";
    public string MacAddress { get; init; } = "";
    /// <summary>Address and prefix length, e.g. "198.18.1.2/24".</summary>
    public string Ipv4Address { get; init; } = "";
    public IReadOnlyList<string> Aliases { get; init; } = [];
}

/// <summary>One network of <c>POST /v1/workloads</c>, in the order given.</summary>
public sealed record WorkloadNetwork
{
    public required string Network { get; init; }
    public string? Address { get; init; }
    public IReadOnlyList<string>? Aliases { get; init; }
}

/// <summary><c>POST /v1/workloads</c>: a fresh namespace attached to networks.</summary>
public sealed record WorkloadCreateRequest
{
    public string? Name { get; init; }
    public required IReadOnlyList<WorkloadNetwork> Networks { get; init; }
    /// <summary>False: the daemon removes the workload once <see cref="ClientPid"/> exits.</summary>
    public bool Detached { get; init; }
    public int? ClientPid { get; init; }
}

/// <summary>A workload as the daemon answers it.</summary>
public sealed record WorkloadView
{
    public string Name { get; init; } = "";
    /// <summary>An <c>ip netns</c> name ("uo-NAME").</summary>
    public string Netns { get; init; } = "";
    public string NetnsPath { get; init; } = "";
    /// <summary>RFC 3339; kept as text so that any precision the daemon writes reads.</summary>
    public string Created { get; init; } = "";
    public bool Detached { get; init; }
    public int? ClientPid { get; init; }
    public IReadOnlyList<EndpointView> Endpoints { get; init; } = [];
}

/// <summary>Source-generated JSON of the client's requests and answers (the binary is NativeAOT).</summary>
[JsonSourceGenerationOptions(PropertyNamingPolicy = JsonKnownNamingPolicy.SnakeCaseLower, DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull)]
[JsonSerializable(typeof(UserOverlay.Control.Networks.NetworkCreateRequest))]
[JsonSerializable(typeof(UserOverlay.Control.Networks.NetworkInspect))]
[JsonSerializable(typeof(List<UserOverlay.Control.Networks.NetworkInspect>))]
[JsonSerializable(typeof(ConnectRequest))]
[JsonSerializable(typeof(DisconnectRequest))]
[JsonSerializable(typeof(EndpointView))]
[JsonSerializable(typeof(WorkloadCreateRequest))]
[JsonSerializable(typeof(WorkloadView))]
[JsonSerializable(typeof(List<WorkloadView>))]
public sealed partial class ClientJson : JsonSerializerContext;
