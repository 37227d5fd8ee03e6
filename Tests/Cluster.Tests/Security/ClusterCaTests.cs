using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using UserOverlay.Cluster.Manager;
using UserOverlay.Cluster.Security;
using UserOverlay.Control.Networks;

namespace UserOverlay.Cluster.Tests.Security;

/// <summary>The cluster's CA: the root's shape, loading it back, and what it issues (and refuses to).</summary>
public sealed class ClusterCaTests : IDisposable
{
    private readonly ClusterCa _ca = ClusterCa.Create("cluster-a");

    public void Dispose() => _ca.Dispose();

    internal static string Csr(ECDsa key, string subject = "CN=whatever") =>
        new CertificateRequest(subject, key, HashAlgorithmName.SHA256).CreateSigningRequestPem();

    private static T Ext<T>(X509Certificate2 c) where T : X509Extension => c.Extensions.OfType<T>().Single();

    [Fact]
    public void The_root_is_a_self_signed_p256_ca_for_twenty_years()
    {
        var root = _ca.Certificate;
        Assert.Equal("CN=useroverlay-ca, O=cluster-a", root.Subject);
        Assert.Equal(root.Subject, root.Issuer);
        Assert.Equal("cluster-a", _ca.ClusterId);
        Assert.True(NodeCertificates.IsP256(root.PublicKey));
        var bc = Ext<X509BasicConstraintsExtension>(root);
        Assert.True(bc.CertificateAuthority);
        Assert.True(bc.Critical);
        Assert.Equal(X509KeyUsageFlags.KeyCertSign | X509KeyUsageFlags.CrlSign, Ext<X509KeyUsageExtension>(root).KeyUsages);
        double years = (root.NotAfter - root.NotBefore).TotalDays / 365.25;
        Assert.InRange(years, 19.99, 20.01);
        Assert.False(root.HasPrivateKey);
        Assert.Null(ClusterCa.CheckRoot(root));
        Assert.StartsWith("-----BEGIN CERTIFICATE-----", _ca.CertificatePem, StringComparison.Ordinal);
    }

    [Fact]
    public void A_root_loads_back_from_its_pem_verbatim_and_issues_certificates_the_original_trusts()
    {
        string pem = _ca.CertificatePem + "\n"; // whatever the bytes are, they are kept verbatim (tokens hash them)
        using var loaded = ClusterCa.Load(pem, _ca.ExportKeyPem());
        Assert.Equal(pem, loaded.CertificatePem);
        Assert.Equal("cluster-a", loaded.ClusterId);
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        using var cert = loaded.IssueNodeCertificate(Csr(key), "node1", NodeRole.Worker);
        Assert.Null(NodeCertificates.ValidateChain(cert, _ca.Certificate, DateTimeOffset.UtcNow, NodeCertificates.ClientAuthOid));
    }

    [Fact]
    public void Loading_refuses_a_key_that_is_not_the_roots_a_non_ca_and_garbage()
    {
        using var other = ClusterCa.Create("cluster-b");
        var e = Assert.Throws<ControlException>(() => ClusterCa.Load(_ca.CertificatePem, other.ExportKeyPem()));
        Assert.Contains("the root key is not the root certificate's key", e.Message, StringComparison.Ordinal);

        using var nodeKey = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        using var leaf = _ca.IssueNodeCertificate(Csr(nodeKey), "n1", NodeRole.Manager);
        e = Assert.Throws<ControlException>(() => ClusterCa.Load(leaf.ExportCertificatePem(), nodeKey.ExportPkcs8PrivateKeyPem()));
        Assert.Contains("not a CA", e.Message, StringComparison.Ordinal);

        e = Assert.Throws<ControlException>(() => ClusterCa.Load("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n", other.ExportKeyPem()));
        Assert.Equal("root_certificate_pem", e.Field);
        e = Assert.Throws<ControlException>(() => ClusterCa.Load(_ca.CertificatePem, "not a key"));
        Assert.Equal("root_key_pem", e.Field);

        using var rsa = RSA.Create(2048);
        var rsaReq = new CertificateRequest("CN=useroverlay-ca, O=x", rsa, HashAlgorithmName.SHA256, RSASignaturePadding.Pkcs1);
        rsaReq.CertificateExtensions.Add(new X509BasicConstraintsExtension(true, false, 0, true));
        using var rsaRoot = rsaReq.CreateSelfSigned(DateTimeOffset.UtcNow, DateTimeOffset.UtcNow.AddYears(1));
        Assert.Contains("not ECDSA P-256", ClusterCa.CheckRoot(rsaRoot), StringComparison.Ordinal);
    }

    [Theory]
    [InlineData(NodeRole.Worker, "swarm-worker")]
    [InlineData(NodeRole.Manager, "swarm-manager")]
    public void A_node_certificate_carries_the_identity_the_ca_decides(NodeRole role, string unit)
    {
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        // The request claims to be a manager of another cluster: ignored.
        using var cert = _ca.IssueNodeCertificate(Csr(key, "CN=evil, OU=swarm-manager, O=cluster-z"), "abc123", role);
        Assert.Equal($"CN=abc123, OU={unit}, O=cluster-a", cert.Subject);
        Assert.Equal(_ca.Certificate.Subject, cert.Issuer);
        Assert.True(NodeCertificates.TryReadSubject(cert, out var subject, out string error), error);
        Assert.Equal(new NodeCertificateSubject("abc123", role, "cluster-a"), subject);
        Assert.False(Ext<X509BasicConstraintsExtension>(cert).CertificateAuthority);
        Assert.Equal(X509KeyUsageFlags.DigitalSignature, Ext<X509KeyUsageExtension>(cert).KeyUsages);
        var eku = Ext<X509EnhancedKeyUsageExtension>(cert).EnhancedKeyUsages.Cast<Oid>().Select(o => o.Value).ToList();
        Assert.Equal([NodeCertificates.ServerAuthOid, NodeCertificates.ClientAuthOid], eku);
        var dns = Ext<X509SubjectAlternativeNameExtension>(cert).EnumerateDnsNames().ToList();
        Assert.Equal(role == NodeRole.Manager ? ["abc123", "swarm-manager", "swarm-ca"] : ["abc123", "swarm-worker"], dns);
        Assert.Equal(key.ExportSubjectPublicKeyInfo(), cert.PublicKey.ExportSubjectPublicKeyInfo());
        var life = cert.NotAfter - cert.NotBefore;
        Assert.InRange(life, TimeSpan.FromDays(90), TimeSpan.FromDays(90) + ClusterCa.Backdate + TimeSpan.FromSeconds(5));
        Assert.Null(NodeCertificates.ValidateChain(cert, _ca.Certificate, DateTimeOffset.UtcNow, NodeCertificates.ServerAuthOid));
        Assert.Null(NodeCertificates.ValidateChain(cert, _ca.Certificate, DateTimeOffset.UtcNow, NodeCertificates.ClientAuthOid));
    }

    [Fact]
    public void Serials_are_random_and_positive()
    {
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var csr = ClusterCa.ReadSigningRequest(Csr(key));
        var serials = Enumerable.Range(0, 20).Select(_ => { using var c = _ca.IssueNodeCertificate(csr, "n", NodeRole.Worker); return c.SerialNumber; }).ToList();
        Assert.Equal(20, serials.Distinct().Count());
        Assert.All(serials, s => { Assert.Equal(32, s.Length); Assert.True(Convert.ToByte(s[..2], 16) is > 0 and < 0x80); });
    }

    [Fact]
    public void Another_roots_certificate_and_an_expired_one_do_not_validate()
    {
        using var other = ClusterCa.Create("cluster-a"); // same name, another key
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        using var foreign = other.IssueNodeCertificate(Csr(key), "n1", NodeRole.Manager);
        Assert.Contains("not issued by this cluster's CA", NodeCertificates.ValidateChain(foreign, _ca.Certificate, DateTimeOffset.UtcNow, NodeCertificates.ClientAuthOid), StringComparison.Ordinal);
        using var cert = _ca.IssueNodeCertificate(Csr(key), "n1", NodeRole.Worker, TimeSpan.FromHours(1));
        Assert.Contains("expired", NodeCertificates.ValidateChain(cert, _ca.Certificate, DateTimeOffset.UtcNow.AddHours(2), NodeCertificates.ClientAuthOid), StringComparison.Ordinal);
        Assert.Contains("not valid before", NodeCertificates.ValidateChain(cert, _ca.Certificate, DateTimeOffset.UtcNow.AddHours(-1), NodeCertificates.ClientAuthOid), StringComparison.Ordinal);
    }

    [Fact]
    public void Requests_that_are_not_p256_or_do_not_verify_are_refused()
    {
        using var rsa = RSA.Create(2048);
        string rsaCsr = new CertificateRequest("CN=x", rsa, HashAlgorithmName.SHA256, RSASignaturePadding.Pkcs1).CreateSigningRequestPem();
        var e = Assert.Throws<ControlException>(() => _ca.IssueNodeCertificate(rsaCsr, "n1", NodeRole.Worker));
        Assert.Equal("csr_pem", e.Field);
        Assert.Contains("key is RSA; the cluster accepts only ECDSA P-256 keys", e.Message, StringComparison.Ordinal);

        using var p384 = ECDsa.Create(ECCurve.NamedCurves.nistP384);
        e = Assert.Throws<ControlException>(() => _ca.IssueNodeCertificate(Csr(p384), "n1", NodeRole.Worker));
        Assert.Contains("ECDSA on another curve", e.Message, StringComparison.Ordinal);

        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        byte[] der = new CertificateRequest("CN=x", key, HashAlgorithmName.SHA256).CreateSigningRequest();
        der[30] ^= 0x01; // inside the signed part: the signature no longer matches
        string tampered = PemEncoding.WriteString("CERTIFICATE REQUEST", der);
        e = Assert.Throws<ControlException>(() => _ca.IssueNodeCertificate(tampered, "n1", NodeRole.Worker));
        Assert.Contains("not a signed certificate request", e.Message, StringComparison.Ordinal);

        e = Assert.Throws<ControlException>(() => _ca.IssueNodeCertificate("hello", "n1", NodeRole.Worker));
        Assert.Equal("csr_pem", e.Field);
        e = Assert.Throws<ControlException>(() => _ca.IssueNodeCertificate("", "n1", NodeRole.Worker));
        Assert.Contains("empty", e.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("")]
    [InlineData("-lead")]
    [InlineData("has space")]
    [InlineData("dot.ted")]
    [InlineData("0123456789012345678901234567890123456789012345678901234567890123")]
    public void Node_ids_that_cannot_be_a_dns_name_are_refused(string id)
    {
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var e = Assert.Throws<ControlException>(() => _ca.IssueNodeCertificate(Csr(key), id, NodeRole.Worker));
        Assert.Equal("node_id", e.Field);
    }

    [Fact]
    public void A_certificate_never_outlives_the_root()
    {
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        using var cert = _ca.IssueNodeCertificate(Csr(key), "n1", NodeRole.Worker, TimeSpan.FromDays(365 * 30));
        Assert.Equal(_ca.Certificate.NotAfter, cert.NotAfter);
    }
}
