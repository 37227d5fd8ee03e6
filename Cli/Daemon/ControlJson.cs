using System.Text.Json;
using System.Text.Json.Serialization;
using UserOverlay.Cluster.Node;
using UserOverlay.Control.Gossip;
using UserOverlay.Router;

namespace UserOverlay.Cli.Daemon;

/// <summary>JSON (de)serialisation of the control API: snake_case, source-generated.</summary>
[JsonSourceGenerationOptions(PropertyNamingPolicy = JsonKnownNamingPolicy.SnakeCaseLower, WriteIndented = true,
    DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull)]
[JsonSerializable(typeof(RouterStatus))]
[JsonSerializable(typeof(VersionInfo))]
[JsonSerializable(typeof(ApiError))]
[JsonSerializable(typeof(MembersResponse))]
[JsonSerializable(typeof(SaResponse))]
[JsonSerializable(typeof(UserOverlay.Control.Networks.NetworkCreateRequest))]
[JsonSerializable(typeof(ConnectRequest))]
[JsonSerializable(typeof(DisconnectRequest))]
[JsonSerializable(typeof(EndpointView))]
[JsonSerializable(typeof(IReadOnlyList<EndpointView>))]
[JsonSerializable(typeof(EndpointDetail))]
[JsonSerializable(typeof(WorkloadCreateRequest))]
[JsonSerializable(typeof(WorkloadView))]
[JsonSerializable(typeof(IReadOnlyList<WorkloadView>))]
[JsonSerializable(typeof(WorkloadRecord))]
[JsonSerializable(typeof(SwarmInitRequest))]
[JsonSerializable(typeof(SwarmJoinRequest))]
[JsonSerializable(typeof(SwarmLeaveRequest))]
[JsonSerializable(typeof(SwarmStatus))]
[JsonSerializable(typeof(JoinTokenResult))]
[JsonSerializable(typeof(NodeView))]
[JsonSerializable(typeof(IReadOnlyList<NodeView>))]
[JsonSerializable(typeof(NodeRoleRequest))]
public sealed partial class ControlJson : JsonSerializerContext
{
    /// <summary>Deserialises or throws with a clear message.</summary>
    public static T Read<T>(string json, System.Text.Json.Serialization.Metadata.JsonTypeInfo<T> type) =>
        JsonSerializer.Deserialize(json, type) ?? throw new InvalidDataException("the daemon sent an empty response");
}
