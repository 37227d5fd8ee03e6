using System.Security.Cryptography;
using UserOverlay.Cluster.Manager;
using UserOverlay.Cluster.Security;
using UserOverlay.Control.Networks;

namespace UserOverlay.Cluster.Tests.Security;

/// <summary>A node's identity: made from its parts, saved and loaded (real files, modes), refused when incoherent.</summary>
public sealed class NodeIdentityTests : IDisposable
{
    private readonly ClusterCa _ca = ClusterCa.Create("cluster-a");
    private readonly string _dir = Path.Combine(Path.GetTempPath(), "uo-identity-" + Guid.NewGuid().ToString("N"));

    public void Dispose()
    {
        _ca.Dispose();
        if (Directory.Exists(_dir)) Directory.Delete(_dir, recursive: true);
    }

    private NodeIdentity Make(NodeRole role = NodeRole.Worker, string id = "node1", TimeSpan? lifetime = null)
    {
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        using var cert = _ca.IssueNodeCertificate(ClusterCaTests.Csr(key), id, role, lifetime);
        return NodeIdentity.Create(cert.ExportCertificatePem(), key, _ca.CertificatePem);
    }

    [Fact]
    public void Reads_who_the_node_is_from_its_certificate()
    {
        using var id = Make(NodeRole.Manager, "abc");
        Assert.Equal("abc", id.NodeId);
        Assert.Equal(NodeRole.Manager, id.Role);
        Assert.Equal("cluster-a", id.ClusterId);
        Assert.True(id.Certificate.HasPrivateKey);
        Assert.Equal(_ca.CertificatePem, id.RootPem);
        Assert.False(id.IsExpired(DateTimeOffset.UtcNow));
        Assert.True(id.IsExpired(id.NotAfter));
    }

    [Fact]
    public void The_ca_can_issue_a_whole_identity_for_the_node_that_holds_it()
    {
        using var id = _ca.IssueIdentity("first", NodeRole.Manager, TimeSpan.FromDays(30));
        Assert.Equal(("first", NodeRole.Manager, "cluster-a"), (id.NodeId, id.Role, id.ClusterId));
        Assert.True(id.Certificate.HasPrivateKey);
        Assert.InRange(id.NotAfter - id.NotBefore, TimeSpan.FromDays(30), TimeSpan.FromDays(30) + ClusterCa.Backdate + TimeSpan.FromSeconds(5));
    }

    [Fact]
    public void Renewal_time_falls_in_50_to_80_percent_of_the_lifetime_and_varies()
    {
        var points = new List<double>();
        for (int i = 0; i < 30; i++)
        {
            using var id = Make();
            double f = (id.RenewAt - id.NotBefore) / (id.NotAfter - id.NotBefore);
            Assert.InRange(f, 0.5, 0.8);
            points.Add(f);
        }
        Assert.True(points.Distinct().Count() > 20);
    }

    [Fact]
    public void Saves_and_loads_with_private_modes_and_no_temporary_files_left()
    {
        using var id = Make(NodeRole.Manager);
        id.Save(_dir);
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute, File.GetUnixFileMode(_dir));
        Assert.Equal(["node.pem", "root.pem"], Directory.GetFiles(_dir).Select(Path.GetFileName).Order(StringComparer.Ordinal));
        foreach (string f in Directory.GetFiles(_dir))
            Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(f));
        Assert.True(NodeIdentity.Exists(_dir));
        using var back = NodeIdentity.Load(_dir);
        Assert.Equal(id.NodeId, back.NodeId);
        Assert.Equal(id.Role, back.Role);
        Assert.Equal(id.Certificate.Thumbprint, back.Certificate.Thumbprint);
        Assert.True(back.Certificate.HasPrivateKey);
        Assert.Equal(id.RootPem, back.RootPem);

        // Saving again (a renewal) replaces the files in place, modes kept, and a loose directory mode is tightened.
        File.SetUnixFileMode(_dir, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute | UnixFileMode.OtherRead | UnixFileMode.OtherExecute);
        using var renewed = Make(NodeRole.Worker);
        renewed.Save(_dir);
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute, File.GetUnixFileMode(_dir));
        Assert.Equal(2, Directory.GetFiles(_dir).Length);
        using var again = NodeIdentity.Load(_dir);
        Assert.Equal(NodeRole.Worker, again.Role);
    }

    [Fact]
    public void Loading_says_what_is_missing_or_corrupt()
    {
        var e = Assert.Throws<ControlException>(() => NodeIdentity.Load(_dir));
        Assert.Equal(ControlErrorCodes.NotFound, e.Code);
        using var id = Make();
        id.Save(_dir);
        File.WriteAllText(Path.Combine(_dir, "node.pem"), "garbage");
        e = Assert.Throws<ControlException>(() => NodeIdentity.Load(_dir));
        Assert.Equal(ControlErrorCodes.CorruptState, e.Code);
        Assert.Contains("node.pem", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Refuses_a_certificate_of_another_ca_or_for_another_key()
    {
        using var other = ClusterCa.Create("cluster-a");
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        using var foreign = other.IssueNodeCertificate(ClusterCaTests.Csr(key), "n1", NodeRole.Worker);
        var e = Assert.Throws<ControlException>(() => NodeIdentity.Create(foreign.ExportCertificatePem(), key, _ca.CertificatePem));
        Assert.Equal("certificate_pem", e.Field);
        Assert.Contains("not issued by this cluster's CA", e.Message, StringComparison.Ordinal);

        using var mine = _ca.IssueNodeCertificate(ClusterCaTests.Csr(key), "n1", NodeRole.Worker);
        using var otherKey = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        e = Assert.Throws<ControlException>(() => NodeIdentity.Create(mine.ExportCertificatePem(), otherKey, _ca.CertificatePem));
        Assert.Contains("not for this node's key", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void An_expired_identity_still_loads_so_the_node_can_say_so()
    {
        var past = new FixedTime(DateTimeOffset.UtcNow.AddDays(-100));
        using var oldCa = ClusterCa.Load(_ca.CertificatePem, _ca.ExportKeyPem(), past);
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        using var cert = oldCa.IssueNodeCertificate(ClusterCaTests.Csr(key), "n1", NodeRole.Worker);
        using var id = NodeIdentity.Create(cert.ExportCertificatePem(), key, _ca.CertificatePem);
        Assert.True(id.IsExpired(DateTimeOffset.UtcNow));
    }
}

/// <summary>A clock stopped at a given moment (only <see cref="GetUtcNow"/> is used by the code under test).</summary>
internal sealed class FixedTime(DateTimeOffset now) : TimeProvider
{
    public DateTimeOffset Now { get; set; } = now;

    public override DateTimeOffset GetUtcNow() => Now;
}
