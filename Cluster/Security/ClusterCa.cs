using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using UserOverlay.Cluster.Manager;
using UserOverlay.Control.Networks;

namespace UserOverlay.Cluster.Security;

/// <summary>
/// The cluster's certificate authority: a self-signed ECDSA P-256 root (see <see cref="NodeCertificates"/> for the
/// shapes) and its key, which every manager holds (the cluster record carries both, PEM), and which issues the
/// node certificates. The identity in a certificate is the CA's decision: a certificate request contributes only its
/// public key (which must be P-256 and whose signature must verify); its subject and extensions are ignored.
/// <para>
/// <see cref="CertificatePem"/> is kept verbatim as created or loaded: it is what the managers serve and what join
/// tokens hash, so it must never be re-encoded. Thread-safety: all members may be called concurrently (issuing signs
/// with the one key; ECDsa signing is thread-safe).
/// </para>
/// </summary>
public sealed class ClusterCa : IDisposable
{
    /// <summary>How long a root lives (20 years, as swarm's).</summary>
    public static readonly TimeSpan RootLifetime = TimeSpan.FromDays(20 * 365 + 5);

    /// <summary>How long a node certificate lives unless told (90 days, as swarm's <c>--cert-expiry 2160h</c>).</summary>
    public static readonly TimeSpan DefaultNodeLifetime = TimeSpan.FromDays(90);

    /// <summary>How far a certificate's validity starts before its issue, for clocks that lag the CA's.</summary>
    public static readonly TimeSpan Backdate = TimeSpan.FromMinutes(5);

    private readonly ECDsa _key;
    private readonly TimeProvider _time;

    private ClusterCa(X509Certificate2 certificate, string certificatePem, ECDsa key, string clusterId, TimeProvider time)
    {
        Certificate = certificate;
        CertificatePem = certificatePem;
        _key = key;
        ClusterId = clusterId;
        _time = time;
    }

    /// <summary>The root certificate (public part only).</summary>
    public X509Certificate2 Certificate { get; }

    /// <summary>The root certificate, PEM, verbatim (what join tokens hash).</summary>
    public string CertificatePem { get; }

    /// <summary>The cluster id (the root's O, and the O of every certificate it issues).</summary>
    public string ClusterId { get; }

    /// <summary>The root's private key, PEM (PKCS#8), for the cluster record.</summary>
    public string ExportKeyPem() => _key.ExportPkcs8PrivateKeyPem();

    /// <summary>A new root for the cluster <paramref name="clusterId"/>, valid for <see cref="RootLifetime"/> from now.</summary>
    public static ClusterCa Create(string clusterId, TimeProvider? time = null)
    {
        if (string.IsNullOrWhiteSpace(clusterId) || clusterId.Length > 64 || clusterId.Any(char.IsControl))
            throw ControlException.Invalid("cluster_id", $"'{NodeCertificates.Printable(clusterId ?? "")}' is not a cluster id (1–64 printable characters)");
        time ??= TimeProvider.System;
        var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var name = new X500DistinguishedNameBuilder();
        name.AddCommonName(NodeCertificates.RootCommonName); // the builder's order is the display order (CN first), encoded O first
        name.AddOrganizationName(clusterId);
        var request = new CertificateRequest(name.Build(), key, HashAlgorithmName.SHA256);
        request.CertificateExtensions.Add(new X509BasicConstraintsExtension(certificateAuthority: true, hasPathLengthConstraint: true, pathLengthConstraint: 0, critical: true));
        request.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.KeyCertSign | X509KeyUsageFlags.CrlSign, critical: true));
        request.CertificateExtensions.Add(new X509SubjectKeyIdentifierExtension(request.PublicKey, critical: false));
        var now = time.GetUtcNow();
        using var selfSigned = request.CreateSelfSigned(now - Backdate, now + RootLifetime);
        var publicOnly = X509CertificateLoader.LoadCertificate(selfSigned.RawData);
        return new ClusterCa(publicOnly, publicOnly.ExportCertificatePem(), key, clusterId, time);
    }

    /// <summary>
    /// Loads a root from its certificate and key (PEM, as the cluster record holds them). Refused, naming what is
    /// wrong, unless the certificate is a self-signed P-256 CA of this shape with an O, and the key is its key.
    /// </summary>
    public static ClusterCa Load(string certificatePem, string keyPem, TimeProvider? time = null)
    {
        ArgumentNullException.ThrowIfNull(certificatePem);
        ArgumentNullException.ThrowIfNull(keyPem);
        X509Certificate2 certificate;
        try { certificate = X509Certificate2.CreateFromPem(certificatePem); }
        catch (CryptographicException e) { throw ControlException.Invalid("root_certificate_pem", $"the cluster's root certificate cannot be read ({e.Message})"); }
        ECDsa key = ECDsa.Create();
        try { key.ImportFromPem(keyPem); }
        catch (Exception e) when (e is CryptographicException or ArgumentException)
        {
            key.Dispose();
            certificate.Dispose();
            throw ControlException.Invalid("root_key_pem", $"the cluster's root key cannot be read as an ECDSA key ({e.Message})");
        }
        string? error = CheckRoot(certificate);
        using (var pub = certificate.GetECDsaPublicKey())
        {
            if (error is null && (pub is null || !pub.ExportSubjectPublicKeyInfo().AsSpan().SequenceEqual(key.ExportSubjectPublicKeyInfo())))
                error = "the root key is not the root certificate's key";
        }
        if (error is not null)
        {
            key.Dispose();
            certificate.Dispose();
            throw ControlException.Invalid("root_certificate_pem", error);
        }
        return new ClusterCa(certificate, certificatePem, key, NodeCertificates.OrganizationOf(certificate)!, time ?? TimeProvider.System);
    }

    /// <summary>Null when <paramref name="certificate"/> is a cluster root (self-signed P-256 CA with an O), else why not.</summary>
    public static string? CheckRoot(X509Certificate2 certificate)
    {
        if (!NodeCertificates.IsP256(certificate.PublicKey)) return "the root certificate's key is not ECDSA P-256";
        if (!certificate.Extensions.OfType<X509BasicConstraintsExtension>().Any(b => b.CertificateAuthority)) return "the root certificate is not a CA";
        if (certificate.SubjectName.RawData.AsSpan().SequenceEqual(certificate.IssuerName.RawData) is false) return "the root certificate is not self-signed";
        if (string.IsNullOrEmpty(NodeCertificates.OrganizationOf(certificate))) return "the root certificate has no O (cluster id)";
        // Its signature must verify with its own key: a chain that trusts it alone must build.
        using var chain = new X509Chain();
        chain.ChainPolicy.TrustMode = X509ChainTrustMode.CustomRootTrust;
        chain.ChainPolicy.CustomTrustStore.Add(certificate);
        chain.ChainPolicy.RevocationMode = X509RevocationMode.NoCheck;
        chain.ChainPolicy.DisableCertificateDownloads = true;
        chain.ChainPolicy.VerificationFlags = X509VerificationFlags.IgnoreNotTimeValid;
        return chain.Build(certificate) ? null
            : $"the root certificate's self-signature does not verify ({string.Join(", ", chain.ChainStatus.Select(s => s.Status))})";
    }

    /// <summary>
    /// Reads a certificate signing request (PEM, "CERTIFICATE REQUEST"): its signature must verify and its key must be
    /// ECDSA P-256. Refused with <see cref="ControlErrorCodes.InvalidArgument"/> on field <c>csr_pem</c> otherwise.
    /// </summary>
    public static CertificateRequest ReadSigningRequest(string csrPem)
    {
        if (string.IsNullOrWhiteSpace(csrPem))
            throw ControlException.Invalid("csr_pem", "the certificate request is empty");
        CertificateRequest request;
        try { request = CertificateRequest.LoadSigningRequestPem(csrPem, HashAlgorithmName.SHA256); }
        catch (Exception e) when (e is CryptographicException or ArgumentException)
        {
            throw ControlException.Invalid("csr_pem", $"this is not a signed certificate request in PEM ({e.Message.TrimEnd('.')})");
        }
        if (!NodeCertificates.IsP256(request.PublicKey))
            throw ControlException.Invalid("csr_pem", $"the certificate request's key is {Describe(request.PublicKey)}; the cluster accepts only ECDSA P-256 keys");
        return request;
    }

    /// <summary>Issues a node certificate for the key of the PEM request <paramref name="csrPem"/> (see <see cref="ReadSigningRequest"/>).</summary>
    public X509Certificate2 IssueNodeCertificate(string csrPem, string nodeId, NodeRole role, TimeSpan? lifetime = null) =>
        IssueNodeCertificate(ReadSigningRequest(csrPem), nodeId, role, lifetime);

    /// <summary>Issues a node certificate for the key of <paramref name="request"/> (its subject and extensions are ignored).</summary>
    public X509Certificate2 IssueNodeCertificate(CertificateRequest request, string nodeId, NodeRole role, TimeSpan? lifetime = null)
    {
        ArgumentNullException.ThrowIfNull(request);
        return IssueNodeCertificate(request.PublicKey, nodeId, role, lifetime);
    }

    /// <summary>
    /// Issues a node certificate (public part only: the node holds its key) naming <paramref name="nodeId"/>,
    /// <paramref name="role"/> and this CA's cluster, valid from now (minus <see cref="Backdate"/>) for
    /// <paramref name="lifetime"/> (default <see cref="DefaultNodeLifetime"/>), and never past the root's own expiry.
    /// </summary>
    public X509Certificate2 IssueNodeCertificate(PublicKey publicKey, string nodeId, NodeRole role, TimeSpan? lifetime = null)
    {
        ArgumentNullException.ThrowIfNull(publicKey);
        if (!NodeCertificates.IsP256(publicKey))
            throw ControlException.Invalid("csr_pem", $"the key is {Describe(publicKey)}; the cluster accepts only ECDSA P-256 keys");
        if (!NodeCertificates.IsValidNodeId(nodeId))
            throw ControlException.Invalid("node_id", $"'{NodeCertificates.Printable(nodeId ?? "")}' is not a node id (1–63 letters, digits and '-')");
        var life = lifetime ?? DefaultNodeLifetime;
        if (life <= TimeSpan.Zero)
            throw ControlException.Invalid("lifetime", $"a certificate's lifetime must be positive, not {life}");

        string unit = NodeCertificates.UnitOf(role);
        var name = new X500DistinguishedNameBuilder();
        name.AddCommonName(nodeId);
        name.AddOrganizationalUnitName(unit);
        name.AddOrganizationName(ClusterId);
        var request = new CertificateRequest(name.Build(), publicKey, HashAlgorithmName.SHA256);
        request.CertificateExtensions.Add(new X509BasicConstraintsExtension(false, false, 0, critical: true));
        request.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.DigitalSignature, critical: true));
        request.CertificateExtensions.Add(new X509EnhancedKeyUsageExtension(
            [new Oid(NodeCertificates.ServerAuthOid), new Oid(NodeCertificates.ClientAuthOid)], critical: false));
        var san = new SubjectAlternativeNameBuilder();
        san.AddDnsName(nodeId);
        san.AddDnsName(unit);
        if (role == NodeRole.Manager) san.AddDnsName(NodeCertificates.CaDnsName);
        request.CertificateExtensions.Add(san.Build());
        request.CertificateExtensions.Add(new X509SubjectKeyIdentifierExtension(publicKey, critical: false));
        request.CertificateExtensions.Add(X509AuthorityKeyIdentifierExtension.CreateFromCertificate(Certificate, true, false));

        var now = _time.GetUtcNow();
        var notBefore = now - Backdate;
        var notAfter = now + life;
        var rootEnd = new DateTimeOffset(Certificate.NotAfter.ToUniversalTime(), TimeSpan.Zero);
        if (notAfter > rootEnd) notAfter = rootEnd;
        if (notAfter <= notBefore)
            throw new ControlException(ControlErrorCodes.Internal, "the cluster's root certificate has expired; it cannot issue certificates");
        byte[] serial = RandomNumberGenerator.GetBytes(16);
        serial[0] = (byte)((serial[0] & 0x7f) | 0x01); // positive, and never a leading zero byte
        return request.Create(Certificate.SubjectName, X509SignatureGenerator.CreateForECDsa(_key), notBefore, notAfter, serial);
    }

    /// <summary>
    /// A whole identity made here, key and all: for the node that holds the CA itself (the first manager at
    /// <c>swarm init</c>, a manager renewing its own certificate). Other nodes send a request instead.
    /// </summary>
    public NodeIdentity IssueIdentity(string nodeId, NodeRole role, TimeSpan? lifetime = null)
    {
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        using var cert = IssueNodeCertificate(new CertificateRequest("CN=" + NodeCertificates.RootCommonName, key, HashAlgorithmName.SHA256).PublicKey, nodeId, role, lifetime);
        return NodeIdentity.Create(cert.ExportCertificatePem(), key, CertificatePem);
    }

    /// <summary>Disposes the key.</summary>
    public void Dispose()
    {
        _key.Dispose();
        Certificate.Dispose();
    }

    private static string Describe(PublicKey key) => key.Oid.Value switch
    {
        "1.2.840.113549.1.1.1" => "RSA",
        "1.2.840.10045.2.1" => "ECDSA on another curve",
        "1.3.101.112" => "Ed25519",
        _ => $"of algorithm {key.Oid.FriendlyName ?? key.Oid.Value}",
    };
}
