using System.Text.Json;
using System.Text.Json.Serialization;

namespace UserOverlay.Cli.Cni;

/// <summary>
/// The network configuration the runtime writes on the plugin's stdin (one entry of a conflist, with the list's
/// cniVersion and name): the well-known fields of the CNI specification and this plugin's own (<see cref="Network"/>,
/// <see cref="Host"/>). Other fields are ignored.
/// </summary>
public sealed record CniNetConf
{
    public string? CniVersion { get; init; }
    public string? Name { get; init; }
    public string? Type { get; init; }

    /// <summary>The UserOverlay network (name or id) the container joins.</summary>
    public string? Network { get; init; }

    /// <summary>The router, as <c>-H</c> takes it: a name (/run/useroverlay/NAME.sock) or a socket path; default as the CLI chooses.</summary>
    public string? Host { get; init; }

    /// <summary>A delegated IPAM plugin (<c>{"type": "host-local", …}</c>); absent: UserOverlay's own IPAM.</summary>
    public JsonElement? Ipam { get; init; }

    /// <summary>The previous plugin's result (ADD in a chain), or this plugin's earlier ADD result (CHECK, DEL).</summary>
    public CniResult? PrevResult { get; init; }

    /// <summary>GC (1.1.0): the attachments that are still valid.</summary>
    [JsonPropertyName("cni.dev/valid-attachments")]
    public IReadOnlyList<CniAttachment>? ValidAttachments { get; init; }

    /// <summary>GC: the same list under the name an earlier draft of 1.1.0 used (libcni sends both).</summary>
    [JsonPropertyName("cni.dev/attachments")]
    public IReadOnlyList<CniAttachment>? Attachments { get; init; }
}

/// <summary>One element of GC's valid-attachments list.</summary>
public sealed record CniAttachment(string? ContainerID, string? Ifname);

/// <summary>An interface of a result.</summary>
public sealed record CniInterface(string Name, string? Mac = null, int? Mtu = null, string? Sandbox = null);

/// <summary>An IP configuration of a result; <see cref="Version"/> only in 0.x results.</summary>
public sealed record CniIpConfig(string Address, string? Gateway = null, int? Interface = null, string? Version = null);

/// <summary>A route of a result.</summary>
public sealed record CniRoute(string Dst, string? Gw = null);

/// <summary>The DNS block of a result.</summary>
public sealed record CniDns(IReadOnlyList<string>? Nameservers = null, string? Domain = null, IReadOnlyList<string>? Search = null, IReadOnlyList<string>? Options = null);

/// <summary>The result of ADD (and the <c>prevResult</c> of a configuration).</summary>
public sealed record CniResult
{
    public string? CniVersion { get; init; }
    public IReadOnlyList<CniInterface>? Interfaces { get; init; }
    public IReadOnlyList<CniIpConfig>? Ips { get; init; }
    public IReadOnlyList<CniRoute>? Routes { get; init; }
    public CniDns? Dns { get; init; }
}

/// <summary>The error a plugin prints on stdout (with a non-zero exit).</summary>
public sealed record CniErrorOutput(string CniVersion, int Code, string Msg, string? Details = null);

/// <summary>VERSION's answer.</summary>
public sealed record CniVersionOutput(string CniVersion, IReadOnlyList<string> SupportedVersions);

/// <summary>JSON of the CNI plugin: camelCase as the specification spells it, nulls left out, source-generated.</summary>
[JsonSourceGenerationOptions(PropertyNamingPolicy = JsonKnownNamingPolicy.CamelCase, DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull,
    WriteIndented = true)]
[JsonSerializable(typeof(CniNetConf))]
[JsonSerializable(typeof(CniResult))]
[JsonSerializable(typeof(CniErrorOutput))]
[JsonSerializable(typeof(CniVersionOutput))]
internal sealed partial class CniJson : JsonSerializerContext
{
    /// <summary>Like <see cref="JsonSerializerContext"/>'s default, but quotes and apostrophes in messages stay as typed (not \u0027).</summary>
    public static CniJson Output { get; } = new(new JsonSerializerOptions
    {
        PropertyNamingPolicy = JsonNamingPolicy.CamelCase,
        DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull,
        WriteIndented = true,
        Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping,
    });
}

/// <summary>
/// A failed plugin call, with its CNI error code. Well-known codes (SPEC.md, "Error codes") and this plugin's own (100+).
/// </summary>
public sealed class CniException(int code, string message, string? details = null) : Exception(message)
{
    /// <summary>1: the configuration's cniVersion is not one this plugin speaks.</summary>
    public const int IncompatibleVersion = 1;
    /// <summary>2: a field of the configuration is not supported.</summary>
    public const int UnsupportedField = 2;
    /// <summary>3: the container is unknown or gone.</summary>
    public const int UnknownContainer = 3;
    /// <summary>4: a required environment variable (CNI_COMMAND, CNI_CONTAINERID, …) is missing or malformed.</summary>
    public const int InvalidEnvironment = 4;
    /// <summary>5: an I/O failure.</summary>
    public const int IoFailure = 5;
    /// <summary>6: stdin is not JSON.</summary>
    public const int DecodeFailure = 6;
    /// <summary>7: the network configuration is invalid (a field missing, of the wrong type or naming no network).</summary>
    public const int InvalidConfig = 7;
    /// <summary>11: try again later (the router is not running or cannot answer now).</summary>
    public const int TryAgainLater = 11;
    /// <summary>50 (STATUS): the plugin cannot serve ADD now.</summary>
    public const int NotAvailable = 50;
    /// <summary>100: the router refused the request (its code and sentence are in the message).</summary>
    public const int RouterRefused = 100;
    /// <summary>101 (CHECK): the container's attachment is not as its ADD left it.</summary>
    public const int CheckFailed = 101;

    /// <summary>The CNI error code.</summary>
    public int Code { get; } = code;

    /// <summary>A longer explanation, or null.</summary>
    public string? Details { get; } = details;
}
