using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using System.Text;
using UserOverlay.Cluster.Manager;
using UserOverlay.Control.Networks;

namespace UserOverlay.Cluster.Security;

/// <summary>
/// What a node is in the cluster: its key and certificate, and the cluster's root it trusts (pinned at join).
/// <see cref="NodeId"/>, <see cref="Role"/> and <see cref="ClusterId"/> are read from the certificate; the certificate
/// is checked against the root (chain, key match, subject) when the identity is made or loaded, so an identity in hand
/// is coherent (it may still have expired: see <see cref="IsExpired"/>).
/// <para>
/// On disk (<see cref="Save"/>): a directory (0700) holding <c>node.pem</c> (the certificate, then the PKCS#8 key) and
/// <c>root.pem</c> (the root, verbatim), each 0600 and each replaced atomically (a temporary file, flushed, then
/// renamed), so a crash leaves either the old or the new file; the certificate and its key share one file so they
/// are always replaced together. Thread-safety: immutable; a renewal makes a new instance.
/// </para>
/// </summary>
public sealed class NodeIdentity : IDisposable
{
    /// <summary>The file holding the node's certificate and key.</summary>
    public const string NodeFile = "node.pem";

    /// <summary>The file holding the cluster's root certificate.</summary>
    public const string RootFile = "root.pem";

    private const UnixFileMode DirectoryMode = UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute;
    private const UnixFileMode FileMode = UnixFileMode.UserRead | UnixFileMode.UserWrite;

    private NodeIdentity(X509Certificate2 certificate, X509Certificate2 root, string rootPem, NodeCertificateSubject subject)
    {
        Certificate = certificate;
        Root = root;
        RootPem = rootPem;
        NodeId = subject.NodeId;
        Role = subject.Role;
        ClusterId = subject.ClusterId;
        NotBefore = new DateTimeOffset(certificate.NotBefore.ToUniversalTime(), TimeSpan.Zero);
        NotAfter = new DateTimeOffset(certificate.NotAfter.ToUniversalTime(), TimeSpan.Zero);
        // Swarm's rule: a random point between 50 % and 80 % of the lifetime, so renewals of nodes that joined together spread out.
        RenewAt = NotBefore + (NotAfter - NotBefore) * (0.5 + 0.3 * Random.Shared.NextDouble());
    }

    /// <summary>The node's certificate, with its private key.</summary>
    public X509Certificate2 Certificate { get; }

    /// <summary>The cluster's root certificate.</summary>
    public X509Certificate2 Root { get; }

    /// <summary>The root certificate, PEM, verbatim as pinned.</summary>
    public string RootPem { get; }

    /// <summary>The node id (the certificate's CN).</summary>
    public string NodeId { get; }

    /// <summary>The role the certificate grants (its OU).</summary>
    public NodeRole Role { get; }

    /// <summary>The cluster id (the certificate's O).</summary>
    public string ClusterId { get; }

    /// <summary>When the certificate becomes valid.</summary>
    public DateTimeOffset NotBefore { get; }

    /// <summary>When the certificate expires.</summary>
    public DateTimeOffset NotAfter { get; }

    /// <summary>When to renew: a random point in 50–80 % of the lifetime, drawn when this instance was made.</summary>
    public DateTimeOffset RenewAt { get; }

    /// <summary>The certificate, PEM.</summary>
    public string CertificatePem => Certificate.ExportCertificatePem();

    /// <summary>True when the certificate has expired at <paramref name="now"/>.</summary>
    public bool IsExpired(DateTimeOffset now) => now >= NotAfter;

    /// <summary>
    /// An identity from a certificate (PEM), its key and the root (PEM). Refused (<see cref="ControlErrorCodes.InvalidArgument"/>,
    /// naming the part) unless the certificate was issued by the root, is for this key and names a node. Time is not
    /// checked. The key is copied; the caller keeps ownership of <paramref name="key"/>.
    /// </summary>
    public static NodeIdentity Create(string certificatePem, ECDsa key, string rootPem)
    {
        ArgumentNullException.ThrowIfNull(key);
        X509Certificate2 leaf, root;
        try { leaf = X509Certificate2.CreateFromPem(certificatePem); }
        catch (CryptographicException e) { throw ControlException.Invalid("certificate_pem", $"the node certificate cannot be read ({e.Message})"); }
        try { root = X509Certificate2.CreateFromPem(rootPem); }
        catch (CryptographicException e) { leaf.Dispose(); throw ControlException.Invalid("root_pem", $"the root certificate cannot be read ({e.Message})"); }
        X509Certificate2 withKey;
        try
        {
            using var copy = ECDsa.Create();
            copy.ImportPkcs8PrivateKey(key.ExportPkcs8PrivateKey(), out _);
            withKey = leaf.CopyWithPrivateKey(copy);
        }
        catch (Exception e) when (e is CryptographicException or ArgumentException or InvalidOperationException)
        {
            leaf.Dispose();
            root.Dispose();
            throw ControlException.Invalid("certificate_pem", "the node certificate is not for this node's key");
        }
        leaf.Dispose();
        return Checked(withKey, root, rootPem);
    }

    /// <summary>An identity from PEM texts: the certificate, its key (PKCS#8 or SEC1) and the root.</summary>
    public static NodeIdentity FromPem(string certificatePem, string keyPem, string rootPem)
    {
        using var key = ECDsa.Create();
        try { key.ImportFromPem(keyPem); }
        catch (Exception e) when (e is CryptographicException or ArgumentException)
        {
            throw ControlException.Invalid("key_pem", $"the node key cannot be read as an ECDSA key ({e.Message})");
        }
        return Create(certificatePem, key, rootPem);
    }

    /// <summary>True when <paramref name="directory"/> holds a saved identity (both files).</summary>
    public static bool Exists(string directory) =>
        File.Exists(Path.Combine(directory, NodeFile)) && File.Exists(Path.Combine(directory, RootFile));

    /// <summary>
    /// Loads the identity saved in <paramref name="directory"/>. A missing file is <see cref="ControlErrorCodes.NotFound"/>;
    /// an unreadable or incoherent one <see cref="ControlErrorCodes.CorruptState"/> naming the file.
    /// </summary>
    public static NodeIdentity Load(string directory)
    {
        string nodePath = Path.Combine(directory, NodeFile), rootPath = Path.Combine(directory, RootFile);
        foreach (string p in new[] { nodePath, rootPath })
            if (!File.Exists(p))
                throw new ControlException(ControlErrorCodes.NotFound, $"{p} does not exist: this node has no cluster identity (swarm init or swarm join first)", "identity");
        string node = File.ReadAllText(nodePath, Encoding.UTF8), root = File.ReadAllText(rootPath, Encoding.UTF8);
        try { return FromPem(node, node, root); }
        catch (ControlException e)
        {
            string file = e.Field == "root_pem" ? rootPath : nodePath;
            throw new ControlException(ControlErrorCodes.CorruptState, $"{file} does not hold a valid identity: {e.Message}", "identity", e);
        }
    }

    /// <summary>
    /// Saves the identity into <paramref name="directory"/> (created 0700 if missing, and set to 0700), the root first,
    /// then the certificate and key; each file is replaced atomically.
    /// </summary>
    public void Save(string directory)
    {
        Directory.CreateDirectory(directory, DirectoryMode);
        File.SetUnixFileMode(directory, DirectoryMode);
        WriteAtomically(Path.Combine(directory, RootFile), RootPem);
        using var key = Certificate.GetECDsaPrivateKey()!;
        WriteAtomically(Path.Combine(directory, NodeFile), CertificatePem + "\n" + key.ExportPkcs8PrivateKeyPem() + "\n");
    }

    /// <summary>Disposes the certificates (and so the key).</summary>
    public void Dispose()
    {
        Certificate.Dispose();
        Root.Dispose();
    }

    private static NodeIdentity Checked(X509Certificate2 withKey, X509Certificate2 root, string rootPem)
    {
        string? error = ClusterCa.CheckRoot(root) is { } r ? $"root_pem: {r}"
            : NodeCertificates.ValidateChain(withKey, root, DateTimeOffset.UtcNow, NodeCertificates.ClientAuthOid, ignoreTime: true) is { } c ? $"certificate_pem: the node certificate is not valid: {c}"
            : !NodeCertificates.TryReadSubject(withKey, out var subject, out string why) ? $"certificate_pem: {why}"
            : subject.ClusterId != NodeCertificates.OrganizationOf(root) ? $"certificate_pem: the certificate is for cluster '{subject.ClusterId}', the root for '{NodeCertificates.OrganizationOf(root)}'"
            : null;
        if (error is not null)
        {
            withKey.Dispose();
            root.Dispose();
            string field = error.StartsWith("root_pem", StringComparison.Ordinal) ? "root_pem" : "certificate_pem";
            throw new ControlException(ControlErrorCodes.InvalidArgument, error, field);
        }
        NodeCertificates.TryReadSubject(withKey, out var s, out _);
        return new NodeIdentity(withKey, root, rootPem, s!);
    }

    private static void WriteAtomically(string path, string text)
    {
        string temp = $"{path}.tmp-{Convert.ToHexString(RandomNumberGenerator.GetBytes(6))}";
        try
        {
            using (var f = new FileStream(temp, new FileStreamOptions
            {
                Mode = System.IO.FileMode.CreateNew,
                Access = FileAccess.Write,
                UnixCreateMode = FileMode,
            }))
            {
                f.Write(Encoding.UTF8.GetBytes(text));
                f.Flush(flushToDisk: true);
            }
            File.Move(temp, path, overwrite: true);
        }
        catch
        {
            try { File.Delete(temp); } catch (IOException) { } catch (UnauthorizedAccessException) { }
            throw;
        }
    }
}
