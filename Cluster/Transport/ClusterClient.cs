using System.Net;
using System.Net.Http.Json;
using System.Net.Security;
using System.Security.Authentication;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using System.Text.Json;
using UserOverlay.Cluster.Manager;
using UserOverlay.Cluster.Security;
using UserOverlay.Control.Networks;

namespace UserOverlay.Cluster.Transport;

/// <summary>Settings of a <see cref="ClusterClient"/>.</summary>
public sealed record ClusterClientOptions
{
    /// <summary>How long one request (join, renew, fetching the CA) may take in all.</summary>
    public TimeSpan RequestTimeout { get; init; } = TimeSpan.FromSeconds(15);

    /// <summary>How long connecting (TCP) may take.</summary>
    public TimeSpan ConnectTimeout { get; init; } = TimeSpan.FromSeconds(5);

    /// <summary>The largest response read (certificates are a few kB).</summary>
    public int MaxResponseBytes { get; init; } = 256 * 1024;

    /// <summary>The clock (validating the managers' certificates).</summary>
    public TimeProvider Time { get; init; } = TimeProvider.System;
}

/// <summary>A failure of a <see cref="ClusterClient"/> call: a stable code and one sentence that names the manager.</summary>
public sealed class ClusterClientException(string code, string message, Exception? inner = null) : Exception(message, inner)
{
    /// <summary>"ca_mismatch", "unreachable", "untrusted_manager", "bad_response", "bad_argument", or the server's refusal code (bad_token, unknown_node, …).</summary>
    public string Code { get; } = code;

    /// <summary>The HTTP status of a refusal, else 0.</summary>
    public int Status { get; init; }
}

/// <summary>The cluster's root as a joining node pinned it: checked against the token's digest.</summary>
/// <param name="Pem">The root certificate PEM, verbatim as served.</param>
/// <param name="Certificate">The root certificate.</param>
/// <param name="ClusterId">The cluster id (the root's O).</param>
public sealed record PinnedRoot(string Pem, X509Certificate2 Certificate, string ClusterId);

/// <summary>
/// A node's side of the cluster port (see <see cref="ClusterServer"/>): joining (fetching and pinning the root, then a
/// certificate request over TLS validated against the pinned root), renewing, and HTTP clients that present the
/// node's certificate and accept only managers of its cluster: the server's chain must lead to the pinned root alone
/// (no system roots, no revocation, no name check: managers are dialled by address), its OU must be
/// <c>swarm-manager</c> and its O the node's cluster. Manager addresses are "HOST[:PORT]" (port 2377 by default).
/// Thread-safety: all members may be called concurrently.
/// </summary>
public sealed class ClusterClient(ClusterClientOptions? options = null)
{
    private readonly ClusterClientOptions _options = options ?? new ClusterClientOptions();

    /// <summary>
    /// Fetches the root from the manager at <paramref name="manager"/> over TLS without validating anything (the
    /// root is what is not known yet) and checks it against <paramref name="token"/>'s digest before anything else is
    /// sent: a mismatch is <c>ca_mismatch</c>, and the token never leaves this node.
    /// </summary>
    public async Task<PinnedRoot> FetchAndPinRootAsync(string manager, JoinToken token, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(token);
        var uri = ManagerUri(manager);
        using var handler = NewHandler();
        handler.SslOptions.RemoteCertificateValidationCallback = (_, _, _, _) => true; // trust on first use, checked by the digest below
        using var http = NewClient(handler, uri);
        byte[] pem = await SendAsync(http, manager, () => new HttpRequestMessage(HttpMethod.Get, "/v1/cluster/ca"),
            (r, ct) => r.Content.ReadAsByteArrayAsync(ct), cancellationToken).ConfigureAwait(false);
        if (!token.MatchesRoot(pem))
            throw new ClusterClientException("ca_mismatch",
                $"the manager at {manager} presents a CA whose digest does not match the token: the token expects {token.Digest}, the CA's is {JoinToken.DigestOf(pem)} " +
                "(check the token and the address; a mismatch can also mean someone between this node and the manager); nothing was sent");
        string text = System.Text.Encoding.UTF8.GetString(pem);
        X509Certificate2 root;
        try { root = X509Certificate2.CreateFromPem(text); }
        catch (CryptographicException e) { throw new ClusterClientException("bad_response", $"the manager at {manager} served a CA that cannot be read ({e.Message})", e); }
        if (ClusterCa.CheckRoot(root) is { } why)
        {
            root.Dispose();
            throw new ClusterClientException("bad_response", $"the manager at {manager} served a CA that is not a cluster root: {why}");
        }
        return new PinnedRoot(text, root, NodeCertificates.OrganizationOf(root)!);
    }

    /// <summary>
    /// Joins the cluster through the manager at <paramref name="manager"/>: pins the root (<see cref="FetchAndPinRootAsync"/>),
    /// makes the node's P-256 key, sends the token and a certificate request over TLS validated against the pinned root,
    /// and returns the node's identity (not yet saved: <see cref="NodeIdentity.Save"/>). Refusals carry the server's code
    /// (<c>bad_token</c>, <c>conflict</c>, …) and sentence.
    /// </summary>
    public async Task<NodeIdentity> JoinAsync(string manager, JoinToken token, string hostname, string advertiseAddress, string dataPathAddress,
        CancellationToken cancellationToken = default)
    {
        var pinned = await FetchAndPinRootAsync(manager, token, cancellationToken).ConfigureAwait(false);
        try
        {
            using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
            var body = new JoinRequestBody
            {
                Token = token.ToString(),
                CsrPem = NewCsr(key),
                Hostname = hostname,
                AdvertiseAddr = advertiseAddress,
                DataPathAddr = dataPathAddress,
            };
            using var handler = NewHandler();
            handler.SslOptions.RemoteCertificateValidationCallback = ManagerValidator(pinned.Certificate, pinned.ClusterId, out var failure);
            using var http = NewClient(handler, ManagerUri(manager));
            var response = await SendAsync(http, manager,
                () => new HttpRequestMessage(HttpMethod.Post, "/v1/cluster/join") { Content = JsonContent.Create(body, ClusterWireJson.Default.JoinRequestBody) },
                ReadCertificateResponse, cancellationToken, failure).ConfigureAwait(false);
            return ToIdentity(manager, response, key, pinned.Pem, expectedNodeId: null);
        }
        finally
        {
            pinned.Certificate.Dispose();
        }
    }

    /// <summary>
    /// Renews <paramref name="identity"/>'s certificate through the manager at <paramref name="manager"/>,
    /// authenticated by the current certificate, with a new key; the role is the cluster's current one (so a promotion
    /// or demotion shows here). A removed node gets <c>unknown_node</c>. The old identity is left as it is.
    /// </summary>
    public async Task<NodeIdentity> RenewAsync(NodeIdentity identity, string manager, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(identity);
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var body = new RenewRequestBody { CsrPem = NewCsr(key) };
        using var handler = CreateHandler(() => identity, out var failure);
        using var http = NewClient(handler, ManagerUri(manager));
        var response = await SendAsync(http, manager,
            () => new HttpRequestMessage(HttpMethod.Post, "/v1/cluster/renew") { Content = JsonContent.Create(body, ClusterWireJson.Default.RenewRequestBody) },
            ReadCertificateResponse, cancellationToken, failure).ConfigureAwait(false);
        if (response.RootPem != identity.RootPem)
            throw new ClusterClientException("bad_response", $"the manager at {manager} renewed with another root than the one this node pinned (root rotation is not supported)");
        return ToIdentity(manager, response, key, identity.RootPem, identity.NodeId);
    }

    /// <summary>
    /// An HTTP client for the cluster port of managers (base address <paramref name="manager"/> if given): it presents
    /// <paramref name="identity"/>'s certificate and accepts only managers of its cluster. Dispose it when done.
    /// </summary>
    public HttpClient CreateHttpClient(NodeIdentity identity, string? manager = null)
    {
        ArgumentNullException.ThrowIfNull(identity);
        return NewClient(CreateHandler(() => identity, out _), manager is null ? null : ManagerUri(manager), disposeHandler: true);
    }

    /// <summary>
    /// A handler presenting the certificate of whatever identity <paramref name="identity"/> returns when a connection is
    /// made (so one long-lived client follows renewals: connections are recycled every few minutes), accepting only
    /// managers of that identity's cluster.
    /// </summary>
    public SocketsHttpHandler CreateHandler(Func<NodeIdentity> identity) => CreateHandler(identity, out _);

    /// <summary>
    /// The https URI of the manager at "HOST[:PORT]", "IP[:PORT]" or "[IPv6][:PORT]" (port <see cref="ClusterServerOptions.DefaultPort"/>
    /// by default); <see cref="ClusterClientException"/> <c>bad_argument</c> otherwise.
    /// </summary>
    public static Uri ManagerUri(string manager)
    {
        if (string.IsNullOrWhiteSpace(manager))
            throw new ClusterClientException("bad_argument", "the manager address is empty (HOST[:PORT], port 2377 by default)");
        string host;
        int port = ClusterServerOptions.DefaultPort;
        if (IPAddress.TryParse(manager.StartsWith('[') && manager.EndsWith(']') ? manager[1..^1] : manager, out var ip) && !manager.Contains("]:", StringComparison.Ordinal))
            host = ip.AddressFamily == System.Net.Sockets.AddressFamily.InterNetworkV6 ? $"[{ip}]" : ip.ToString();
        else if (IPEndPoint.TryParse(manager, out var ep) && (manager.Contains("]:", StringComparison.Ordinal) || manager.Count(c => c == ':') == 1))
        {
            if (ep.Port == 0) throw new ClusterClientException("bad_argument", $"the manager address '{ControlException.Printable(manager)}' has port 0");
            host = ep.AddressFamily == System.Net.Sockets.AddressFamily.InterNetworkV6 ? $"[{ep.Address}]" : ep.Address.ToString();
            port = ep.Port;
        }
        else
        {
            int colon = manager.LastIndexOf(':');
            host = colon < 0 ? manager : manager[..colon];
            if (colon >= 0 && (!int.TryParse(manager.AsSpan(colon + 1), System.Globalization.NumberStyles.None, null, out port) || port is < 1 or > 65535))
                throw new ClusterClientException("bad_argument", $"the manager address '{ControlException.Printable(manager)}' has no valid port after ':' (1–65535)");
            if (Uri.CheckHostName(host) is not (UriHostNameType.Dns or UriHostNameType.IPv4))
                throw new ClusterClientException("bad_argument", $"the manager address '{ControlException.Printable(manager)}' is not HOST[:PORT]");
        }
        return new Uri($"https://{host}:{port}/");
    }

    private SocketsHttpHandler CreateHandler(Func<NodeIdentity> identity, out StrongBoxString failure)
    {
        ArgumentNullException.ThrowIfNull(identity);
        var handler = NewHandler();
        var box = new StrongBoxString();
        handler.SslOptions.LocalCertificateSelectionCallback = (_, _, _, _, _) => identity().Certificate;
        handler.SslOptions.RemoteCertificateValidationCallback = (_, cert, _, _) =>
        {
            var id = identity();
            string? why = ValidateManager(cert, id.Root, id.ClusterId, _options.Time.GetUtcNow());
            box.Value = why;
            return why is null;
        };
        failure = box;
        return handler;
    }

    private System.Net.Security.RemoteCertificateValidationCallback ManagerValidator(X509Certificate2 root, string clusterId, out StrongBoxString failure)
    {
        var box = new StrongBoxString();
        failure = box;
        return (_, cert, _, _) =>
        {
            string? why = ValidateManager(cert, root, clusterId, _options.Time.GetUtcNow());
            box.Value = why;
            return why is null;
        };
    }

    /// <summary>Null when <paramref name="presented"/> is a manager's certificate of the cluster of <paramref name="root"/>, else why not.</summary>
    internal static string? ValidateManager(X509Certificate? presented, X509Certificate2 root, string clusterId, DateTimeOffset now)
    {
        if (presented is null) return "it presented no certificate";
        using var cert = X509CertificateLoader.LoadCertificate(presented.GetRawCertData());
        if (NodeCertificates.ValidateChain(cert, root, now, NodeCertificates.ServerAuthOid) is { } why) return $"its certificate is not valid: {why}";
        if (!NodeCertificates.TryReadSubject(cert, out var subject, out string error)) return $"its certificate is not a node's: {error}";
        if (subject.ClusterId != clusterId) return $"its certificate is for cluster '{ControlException.Printable(subject.ClusterId)}', not '{clusterId}'";
        if (subject.Role != NodeRole.Manager) return $"its certificate is a worker's (node {subject.NodeId}), not a manager's";
        return null;
    }

    private SocketsHttpHandler NewHandler() => new()
    {
        ConnectTimeout = _options.ConnectTimeout,
        PooledConnectionLifetime = TimeSpan.FromMinutes(5),
        AllowAutoRedirect = false,
        UseProxy = false,
        UseCookies = false,
        AutomaticDecompression = DecompressionMethods.None,
        SslOptions = new SslClientAuthenticationOptions
        {
            EnabledSslProtocols = SslProtocols.Tls12 | SslProtocols.Tls13,
            CertificateRevocationCheckMode = X509RevocationMode.NoCheck,
        },
    };

    private HttpClient NewClient(HttpMessageHandler handler, Uri? baseAddress, bool disposeHandler = false) =>
        new(handler, disposeHandler)
        {
            BaseAddress = baseAddress,
            Timeout = _options.RequestTimeout,
            MaxResponseContentBufferSize = _options.MaxResponseBytes,
        };

    private static async Task<T> SendAsync<T>(HttpClient http, string manager, Func<HttpRequestMessage> request,
        Func<HttpResponseMessage, CancellationToken, Task<T>> read, CancellationToken cancellationToken, StrongBoxString? tlsFailure = null)
    {
        HttpResponseMessage response;
        try { response = await http.SendAsync(request(), cancellationToken).ConfigureAwait(false); }
        catch (HttpRequestException e) when (tlsFailure?.Value is { } why)
        {
            throw new ClusterClientException("untrusted_manager", $"the server at {manager} is not a manager of this cluster: {why}; nothing was sent", e);
        }
        catch (HttpRequestException e)
        {
            throw new ClusterClientException("unreachable", $"cannot reach the manager at {manager}: {Innermost(e)}", e);
        }
        catch (TaskCanceledException e) when (!cancellationToken.IsCancellationRequested)
        {
            throw new ClusterClientException("unreachable", $"the manager at {manager} did not answer within {http.Timeout.TotalSeconds:0} s", e);
        }
        using (response)
        {
            try
            {
                if (response.IsSuccessStatusCode) return await read(response, cancellationToken).ConfigureAwait(false);
                ClusterError? error = null;
                try { error = await response.Content.ReadFromJsonAsync(ClusterWireJson.Default.ClusterError, cancellationToken).ConfigureAwait(false); }
                catch (JsonException) { }
                catch (NotSupportedException) { }
                throw error is { Code: not null, Message: not null }
                    ? new ClusterClientException(error.Code, $"the manager at {manager} refused: {error.Message}") { Status = (int)response.StatusCode }
                    : new ClusterClientException("bad_response", $"the manager at {manager} answered {(int)response.StatusCode} {response.ReasonPhrase} without an error body") { Status = (int)response.StatusCode };
            }
            catch (HttpRequestException e)
            {
                throw new ClusterClientException("bad_response", $"the manager at {manager} sent an unreadable answer: {Innermost(e)}", e);
            }
        }
    }

    private static async Task<CertificateResponse> ReadCertificateResponse(HttpResponseMessage r, CancellationToken ct)
    {
        try
        {
            return await r.Content.ReadFromJsonAsync(ClusterWireJson.Default.CertificateResponse, ct).ConfigureAwait(false)
                ?? throw new JsonException("null");
        }
        catch (JsonException e) { throw new ClusterClientException("bad_response", $"the manager's answer is not a certificate response ({e.Message})", e); }
    }

    private static NodeIdentity ToIdentity(string manager, CertificateResponse response, ECDsa key, string rootPem, string? expectedNodeId)
    {
        if (response.RootPem != rootPem)
            throw new ClusterClientException("bad_response", $"the manager at {manager} answered with another root than the one it served");
        NodeIdentity identity;
        try { identity = NodeIdentity.Create(response.CertificatePem, key, rootPem); }
        catch (ControlException e) { throw new ClusterClientException("bad_response", $"the manager at {manager} issued an unusable certificate: {e.Message}", e); }
        if (identity.NodeId != response.NodeId || (expectedNodeId is not null && identity.NodeId != expectedNodeId))
        {
            identity.Dispose();
            throw new ClusterClientException("bad_response", $"the manager at {manager} issued a certificate for node {identity.NodeId}, not {expectedNodeId ?? response.NodeId}");
        }
        return identity;
    }

    private static string NewCsr(ECDsa key) =>
        new CertificateRequest("CN=useroverlay-node", key, HashAlgorithmName.SHA256).CreateSigningRequestPem();

    private static string Innermost(Exception e)
    {
        while (e.InnerException is not null) e = e.InnerException;
        return e.Message.TrimEnd('.');
    }

    private sealed class StrongBoxString
    {
        public volatile string? Value;
    }
}
