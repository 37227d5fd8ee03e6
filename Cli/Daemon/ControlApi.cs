using System.Text.Json;
using System.Text.Json.Serialization;
using UserOverlay.Router;

namespace UserOverlay.Cli.Daemon;

/// <summary>
/// The control socket's API, shaped like Docker's daemon API: HTTP/1.1 + JSON over a Unix socket
/// under /run/useroverlay/ (directory mode 0700). Versioned paths so it can grow:
/// <list type="bullet">
/// <item><c>GET /_ping</c> → "OK"</item>
/// <item><c>GET /v1/version</c> → <see cref="VersionInfo"/></item>
/// <item><c>GET /v1/status</c> → <see cref="RouterStatus"/></item>
/// <item><c>GET /v1/sa</c> → <see cref="SaResponse"/> (encrypted networks only; contains keys)</item>
/// <item><c>GET /v1/members</c> → <see cref="Gossip.MembersResponse"/> (gossip mode; otherwise 503 with code "gossip_disabled")</item>
/// </list>
/// Errors are <see cref="ApiError"/>: a stable code and a sentence a person can act on.
/// </summary>
public static class ControlApi
{
    /// <summary>Directory of the control sockets.</summary>
    public const string SocketDirectory = "/run/useroverlay";

    /// <summary>Path of the socket of the router named <paramref name="name"/>.</summary>
    public static string SocketPath(string name) => Path.Combine(SocketDirectory, name + ".sock");

    /// <summary>True when <paramref name="name"/> is usable as a router name (and so as a file name).</summary>
    public static bool IsValidName(string name) =>
        name.Length is > 0 and <= 64 && name.All(c => char.IsAsciiLetterOrDigit(c) || c is '-' or '_' or '.') && name[0] != '.';
}

/// <summary>Version information of a running daemon.</summary>
public sealed record VersionInfo(string Version, string Name, int Pid, string Config);

/// <summary>The ESP SAs a router holds (<c>GET /v1/sa</c>): secrets, for decrypting captures.</summary>
public sealed record SaResponse(string Warning, IReadOnlyList<UserOverlay.Crypto.EspSaDescription> Sas);

/// <summary>An API error: a stable code and a message.</summary>
public sealed record ApiError(string Code, string Message);

/// <summary>JSON (de)serialisation of the control API: snake_case, source-generated.</summary>
[JsonSourceGenerationOptions(PropertyNamingPolicy = JsonKnownNamingPolicy.SnakeCaseLower, WriteIndented = true,
    DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull)]
[JsonSerializable(typeof(RouterStatus))]
[JsonSerializable(typeof(VersionInfo))]
[JsonSerializable(typeof(ApiError))]
[JsonSerializable(typeof(Gossip.MembersResponse))]
[JsonSerializable(typeof(SaResponse))]
public sealed partial class ControlJson : JsonSerializerContext
{
    /// <summary>Deserialises or throws with a clear message.</summary>
    public static T Read<T>(string json, System.Text.Json.Serialization.Metadata.JsonTypeInfo<T> type) =>
        JsonSerializer.Deserialize(json, type) ?? throw new InvalidDataException("the daemon sent an empty response");
}
