using System.Text.Json.Serialization;

namespace UserOverlay.Cluster.Transport;

/// <summary>The body of <c>POST /v1/cluster/join</c>. Every field is required; they are nullable so that a missing one gets a sentence naming it.</summary>
internal sealed record JoinRequestBody
{
    /// <summary>The join token (<c>SWMTKN-1-…</c>).</summary>
    public string? Token { get; init; }

    /// <summary>The node's certificate signing request, PEM; only its P-256 public key is used.</summary>
    public string? CsrPem { get; init; }

    /// <summary>The node's host name (unique in the cluster).</summary>
    public string? Hostname { get; init; }

    /// <summary>Where the node's control API is reached: "IP:PORT".</summary>
    public string? AdvertiseAddr { get; init; }

    /// <summary>The node's underlay (VTEP) address: an IP address.</summary>
    public string? DataPathAddr { get; init; }
}

/// <summary>The body of <c>POST /v1/cluster/renew</c>.</summary>
internal sealed record RenewRequestBody
{
    /// <summary>A certificate signing request for the node's (new) key, PEM.</summary>
    public string? CsrPem { get; init; }
}

/// <summary>What join and renew return: the node's certificate and the cluster's root.</summary>
/// <param name="NodeId">The node id (the certificate's CN).</param>
/// <param name="Role">"worker" or "manager" (the certificate's OU says the same).</param>
/// <param name="CertificatePem">The node's new certificate, PEM.</param>
/// <param name="RootPem">The cluster's root certificate, PEM, verbatim.</param>
internal sealed record CertificateResponse(string NodeId, string Role, string CertificatePem, string RootPem);

/// <summary>An error: a stable code (see <see cref="ClusterServerEvent"/> names and <see cref="ClusterErrorCodes"/>) and one sentence.</summary>
/// <param name="Code">For programs.</param>
/// <param name="Message">For people: what is wrong and, where it helps, what to do.</param>
public sealed record ClusterError(string Code, string Message);

/// <summary>Error codes of the cluster port besides the refusal counters' names. WARNING: only append — they cross the wire.</summary>
public static class ClusterErrorCodes
{
    /// <summary>No such route.</summary>
    public const string NotFound = "not_found";
    /// <summary>The join collides with the cluster's state (a host name already in it).</summary>
    public const string Conflict = "conflict";
    /// <summary>The managers cannot serve it now (no quorum, not initialised).</summary>
    public const string Unavailable = "unavailable";
    /// <summary>A fault of the manager's own.</summary>
    public const string Internal = "internal";
}

/// <summary>The cluster port's JSON: snake_case, source-generated (NativeAOT).</summary>
[JsonSourceGenerationOptions(PropertyNamingPolicy = JsonKnownNamingPolicy.SnakeCaseLower)]
[JsonSerializable(typeof(JoinRequestBody))]
[JsonSerializable(typeof(RenewRequestBody))]
[JsonSerializable(typeof(CertificateResponse))]
[JsonSerializable(typeof(ClusterError))]
internal sealed partial class ClusterWireJson : JsonSerializerContext;
