using System.Diagnostics.CodeAnalysis;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using UserOverlay.Cluster.Manager;

namespace UserOverlay.Cluster.Security;

/// <summary>Who a node certificate names: its subject, as the cluster's CA wrote it.</summary>
/// <param name="NodeId">The node id (CN).</param>
/// <param name="Role">Its role (OU <c>swarm-manager</c> or <c>swarm-worker</c>).</param>
/// <param name="ClusterId">The cluster id (O).</param>
public sealed record NodeCertificateSubject(string NodeId, NodeRole Role, string ClusterId);

/// <summary>
/// The shape of the cluster's certificates, shared by the CA that writes them and the peers that read them:
/// <list type="bullet">
/// <item>Root: CN <see cref="RootCommonName"/>, O = the cluster id; ECDSA P-256, self-signed, CA (path length 0),
/// key usage certificate and CRL signing, 20 years.</item>
/// <item>Node: CN = node id, OU = <see cref="ManagerUnit"/> or <see cref="WorkerUnit"/>, O = cluster id; ECDSA P-256,
/// not a CA, key usage digital signature, extended key usage server and client authentication, DNS names = the node
/// id and the OU (so a manager's certificate names <c>swarm-manager</c>), plus <see cref="CaDnsName"/> for managers
/// (they serve the CA, as in swarm, where a node dials the CA by that name); 90 days by default, random 128-bit serial.</item>
/// </list>
/// Peers authorise on the subject (OU, O) after validating the chain against the cluster's root only; the DNS names
/// are for tools that check names (curl --resolve swarm-manager:2377:…), since nodes are dialled by IP address.
/// Thread-safety: stateless.
/// </summary>
public static class NodeCertificates
{
    /// <summary>The root's common name.</summary>
    public const string RootCommonName = "useroverlay-ca";

    /// <summary>The OU of a manager's certificate (and one of its DNS names).</summary>
    public const string ManagerUnit = "swarm-manager";

    /// <summary>The OU of a worker's certificate (and one of its DNS names).</summary>
    public const string WorkerUnit = "swarm-worker";

    /// <summary>The DNS name every manager's certificate also carries: the name under which the CA is served.</summary>
    public const string CaDnsName = "swarm-ca";

    /// <summary>Extended key usage: TLS server authentication.</summary>
    public const string ServerAuthOid = "1.3.6.1.5.5.7.3.1";

    /// <summary>Extended key usage: TLS client authentication.</summary>
    public const string ClientAuthOid = "1.3.6.1.5.5.7.3.2";

    private const string CommonNameOid = "2.5.4.3";
    private const string OrganizationOid = "2.5.4.10";
    private const string OrganizationalUnitOid = "2.5.4.11";
    private const string EcPublicKeyOid = "1.2.840.10045.2.1";

    // The DER of the named curve secp256r1 (1.2.840.10045.3.1.7), as a public key's algorithm parameters carry it.
    private static ReadOnlySpan<byte> P256Parameters => [0x06, 0x08, 0x2A, 0x86, 0x48, 0xCE, 0x3D, 0x03, 0x01, 0x07];

    /// <summary>The OU that says <paramref name="role"/>.</summary>
    public static string UnitOf(NodeRole role) => role == NodeRole.Manager ? ManagerUnit : WorkerUnit;

    /// <summary>True when <paramref name="key"/> is an ECDSA key on P-256 (the only kind the cluster's certificates use).</summary>
    public static bool IsP256(PublicKey key) =>
        key.Oid.Value == EcPublicKeyOid && key.EncodedParameters?.RawData is { } p && p.AsSpan().SequenceEqual(P256Parameters);

    /// <summary>
    /// True when <paramref name="nodeId"/> can be a node id: 1–63 ASCII letters, digits and '-', not starting or ending
    /// with '-' (it is a DNS name of the certificate).
    /// </summary>
    public static bool IsValidNodeId(string? nodeId) =>
        !string.IsNullOrEmpty(nodeId) && nodeId.Length <= 63 && nodeId[0] != '-' && nodeId[^1] != '-'
        && nodeId.All(c => char.IsAsciiLetterOrDigit(c) || c == '-');

    /// <summary>
    /// Reads the subject of a node certificate: exactly one CN (a valid node id), one OU (a known role) and one O (not
    /// empty). Says which is missing or wrong otherwise. The chain is not looked at.
    /// </summary>
    public static bool TryReadSubject(X509Certificate2 certificate, [NotNullWhen(true)] out NodeCertificateSubject? subject, out string error)
    {
        subject = null;
        string? cn = null, ou = null, o = null;
        foreach (var rdn in certificate.SubjectName.EnumerateRelativeDistinguishedNames())
        {
            if (rdn.HasMultipleElements) { error = "the certificate's subject has a multi-valued name (the cluster's CA never writes one)"; return false; }
            string? value = rdn.GetSingleElementValue();
            switch (rdn.GetSingleElementType().Value)
            {
                case CommonNameOid when cn is null: cn = value; break;
                case OrganizationalUnitOid when ou is null: ou = value; break;
                case OrganizationOid when o is null: o = value; break;
                case CommonNameOid or OrganizationalUnitOid or OrganizationOid:
                    error = $"the certificate's subject has more than one {rdn.GetSingleElementType().FriendlyName ?? rdn.GetSingleElementType().Value}";
                    return false;
            }
        }
        if (!IsValidNodeId(cn)) { error = cn is null ? "the certificate has no CN (node id)" : $"the certificate's CN '{Printable(cn)}' is not a node id"; return false; }
        NodeRole role;
        if (ou == ManagerUnit) role = NodeRole.Manager;
        else if (ou == WorkerUnit) role = NodeRole.Worker;
        else { error = ou is null ? "the certificate has no OU (role)" : $"the certificate's OU '{Printable(ou)}' is neither {ManagerUnit} nor {WorkerUnit}"; return false; }
        if (string.IsNullOrEmpty(o)) { error = "the certificate has no O (cluster id)"; return false; }
        subject = new NodeCertificateSubject(cn!, role, o);
        error = "";
        return true;
    }

    /// <summary>The organisation (O) of a certificate's subject (the cluster id of a root or node certificate), or null.</summary>
    public static string? OrganizationOf(X509Certificate2 certificate)
    {
        foreach (var rdn in certificate.SubjectName.EnumerateRelativeDistinguishedNames())
            if (!rdn.HasMultipleElements && rdn.GetSingleElementType().Value == OrganizationOid)
                return rdn.GetSingleElementValue();
        return null;
    }

    /// <summary>
    /// Validates <paramref name="certificate"/>'s chain against <paramref name="root"/> alone (no system roots, no
    /// revocation, no download), at <paramref name="at"/>, for the extended key usage <paramref name="usageOid"/>. The
    /// chain must be exactly leaf → root, and the leaf not a CA. Returns null when valid, else one sentence.
    /// </summary>
    public static string? ValidateChain(X509Certificate2 certificate, X509Certificate2 root, DateTimeOffset at, string usageOid, bool ignoreTime = false)
    {
        using var chain = new X509Chain();
        var policy = chain.ChainPolicy;
        policy.TrustMode = X509ChainTrustMode.CustomRootTrust;
        policy.CustomTrustStore.Add(root);
        policy.RevocationMode = X509RevocationMode.NoCheck;
        policy.DisableCertificateDownloads = true;
        policy.VerificationTime = at.UtcDateTime;
        policy.VerificationTimeIgnored = false;
        policy.ApplicationPolicy.Add(new Oid(usageOid));
        if (ignoreTime) policy.VerificationFlags = X509VerificationFlags.IgnoreNotTimeValid;
        bool ok;
        try { ok = chain.Build(certificate); }
        catch (CryptographicException e) { return $"its chain cannot be built ({e.Message})"; }
        if (!ok)
        {
            var statuses = chain.ChainStatus.Select(s => s.Status).Distinct().ToList();
            if (statuses.Contains(X509ChainStatusFlags.NotTimeValid))
                return certificate.NotAfter.ToUniversalTime() < at.UtcDateTime
                    ? $"it expired at {certificate.NotAfter.ToUniversalTime():yyyy-MM-dd HH:mm:ss} UTC"
                    : $"it is not valid before {certificate.NotBefore.ToUniversalTime():yyyy-MM-dd HH:mm:ss} UTC (check the clocks)";
            if (statuses.Contains(X509ChainStatusFlags.UntrustedRoot) || statuses.Contains(X509ChainStatusFlags.PartialChain))
                return $"it was not issued by this cluster's CA (its issuer is '{Printable(certificate.Issuer)}')";
            if (statuses.Contains(X509ChainStatusFlags.NotValidForUsage))
                return $"it does not allow {(usageOid == ServerAuthOid ? "server" : "client")} authentication";
            return $"its chain is not valid ({string.Join(", ", statuses)})";
        }
        if (chain.ChainElements.Count != 2 || !chain.ChainElements[1].Certificate.RawDataMemory.Span.SequenceEqual(root.RawDataMemory.Span))
            return "its chain is not leaf → cluster root";
        if (certificate.Extensions.OfType<X509BasicConstraintsExtension>().Any(b => b.CertificateAuthority))
            return "it is a CA certificate, not a node's";
        return null;
    }

    internal static string Printable(string s)
    {
        string cut = s.Length > 80 ? s[..80] + "…" : s;
        return string.Concat(cut.Select(c => char.IsControl(c) ? $"\\u{(int)c:x4}" : c.ToString()));
    }
}
