using System.Net;
using UserOverlay.Cluster.Manager;
using UserOverlay.Cluster.Security;

namespace UserOverlay.Cluster.Transport;

/// <summary>
/// Who decides joins and roles for a <see cref="ClusterServer"/>: the cluster's state (the daemon implements it over
/// <see cref="ClusterManager"/>). The server has already checked the request's form, that the token's digest is this
/// cluster's CA and that the certificate request is valid, so an admission here is followed by a certificate.
/// <para>
/// Implementations may return a refusal or throw a <see cref="UserOverlay.Control.Networks.ControlException"/> (as
/// <see cref="ClusterManager.AdmitAsync"/> does): <c>permission_denied</c> counts as a bad token, <c>conflict</c> is
/// passed on as 409, <c>invalid_argument</c> as a malformed request, <c>not_found</c> and store failures as 503.
/// Called concurrently, from request threads; may block on the store.
/// </para>
/// </summary>
public interface IJoinAuthority
{
    /// <summary>Admits a node presenting <see cref="JoinRequest.Token"/> (compare its secret in constant time), or refuses it.</summary>
    Task<JoinDecision> JoinAsync(JoinRequest request, CancellationToken cancellationToken);

    /// <summary>
    /// The node's current role, or null when the cluster no longer has it (removed): renewals take the role from here
    /// (so promote and demote take effect at the next renewal), and, with
    /// <see cref="ClusterServerOptions.VerifyCallers"/>, every authenticated request checks it.
    /// </summary>
    Task<NodeRole?> CurrentRoleAsync(string nodeId, CancellationToken cancellationToken);
}

/// <summary>A join, checked for form by the server.</summary>
/// <param name="Token">The token (well formed, and its digest is this cluster's CA). <c>Token.ToString()</c> is what
/// <see cref="ClusterManager.AdmitAsync"/> compares.</param>
/// <param name="Hostname">The node's host name (1–253 characters, no control characters).</param>
/// <param name="AdvertiseAddress">Its control address, "IP:PORT" (parsed: a valid IP and a port 1–65535).</param>
/// <param name="DataPathAddress">Its VTEP address (a valid IP).</param>
/// <param name="RemoteAddress">The address the request came from (for logs; may differ behind NAT).</param>
public sealed record JoinRequest(JoinToken Token, string Hostname, string AdvertiseAddress, string DataPathAddress, IPAddress? RemoteAddress);

/// <summary>Why a join was refused.</summary>
public enum JoinRefusal
{
    /// <summary>The token matches neither current token.</summary>
    BadToken,
    /// <summary>The token was a current one but was rotated while the node joined.</summary>
    RotatedToken,
    /// <summary>The node collides with the cluster's state (its host name is taken).</summary>
    Conflict,
    /// <summary>A field the authority checks is invalid.</summary>
    Invalid,
    /// <summary>The cluster cannot decide now (no quorum, not initialised).</summary>
    Unavailable,
}

/// <summary>The authority's answer to a join: admitted as <see cref="NodeId"/> with <see cref="Role"/>, or refused.</summary>
public sealed record JoinDecision
{
    private JoinDecision() { }

    /// <summary>True when admitted.</summary>
    public bool Admitted { get; private init; }

    /// <summary>The new node's id (when admitted): 1–63 letters, digits and '-'.</summary>
    public string NodeId { get; private init; } = "";

    /// <summary>Its role (when admitted).</summary>
    public NodeRole Role { get; private init; }

    /// <summary>Why not (when refused).</summary>
    public JoinRefusal Refusal { get; private init; }

    /// <summary>One sentence for the joining node's operator (when refused).</summary>
    public string Message { get; private init; } = "";

    /// <summary>Admitted.</summary>
    public static JoinDecision Admit(string nodeId, NodeRole role) => new() { Admitted = true, NodeId = nodeId, Role = role };

    /// <summary>Refused.</summary>
    public static JoinDecision Refuse(JoinRefusal refusal, string message) => new() { Refusal = refusal, Message = message };
}
