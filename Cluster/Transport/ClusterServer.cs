using System.Net;
using System.Security.Authentication;
using System.Security.Cryptography.X509Certificates;
using System.Text;
using System.Text.Json;
using System.Text.Json.Serialization.Metadata;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Connections;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.AspNetCore.Server.Kestrel.Https;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using UserOverlay.Cluster.Manager;
using UserOverlay.Cluster.Security;
using UserOverlay.Cluster.Store;
using UserOverlay.Control.Networks;

namespace UserOverlay.Cluster.Transport;

/// <summary>Settings of a <see cref="ClusterServer"/>.</summary>
public sealed record ClusterServerOptions
{
    /// <summary>The cluster port (swarm's).</summary>
    public const int DefaultPort = 2377;

    /// <summary>Where to listen (port 0: any free port; <see cref="ClusterServer.EndPoint"/> says which).</summary>
    public IPEndPoint EndPoint { get; init; } = new(IPAddress.Any, DefaultPort);

    /// <summary>This manager's identity: its certificate is the server certificate (it must be a manager's).</summary>
    public required NodeIdentity Identity { get; init; }

    /// <summary>The cluster's CA (issues joiners' and renewals' certificates; its root authenticates callers).</summary>
    public required ClusterCa Ca { get; init; }

    /// <summary>Who admits joins and knows roles.</summary>
    public required IJoinAuthority Authority { get; init; }

    /// <summary>Routes any node of the cluster may call (a valid certificate of this cluster); handlers read <see cref="ClusterCallerExtensions.GetClusterCaller"/>.</summary>
    public Action<RouteGroupBuilder>? NodeRoutes { get; init; }

    /// <summary>Routes only managers may call (OU swarm-manager, and still a manager in the cluster's state).</summary>
    public Action<RouteGroupBuilder>? ManagerRoutes { get; init; }

    /// <summary>
    /// Whether every authenticated request asks <see cref="IJoinAuthority.CurrentRoleAsync"/>, so a removed node is
    /// refused at once and a demoted manager loses manager routes at once (otherwise only at renewal or expiry).
    /// </summary>
    public bool VerifyCallers { get; init; } = true;

    /// <summary>How long issued certificates live.</summary>
    public TimeSpan NodeCertificateLifetime { get; init; } = ClusterCa.DefaultNodeLifetime;

    /// <summary>The largest request body (join and renew bodies are a few kB).</summary>
    public long MaxRequestBodyBytes { get; init; } = 64 * 1024;

    /// <summary>Connections served at once; Kestrel closes further ones at once (a flood cannot exhaust the process).</summary>
    public long MaxConnections { get; init; } = 512;

    /// <summary>
    /// Connections served at once from one IP address; further ones are closed before the handshake and counted
    /// (<see cref="ClusterServerEvent.TooManyConnections"/>), so one host holding connections open cannot take them all.
    /// </summary>
    public int MaxConnectionsPerAddress { get; init; } = 64;

    /// <summary>How long a TLS handshake may take before the connection is dropped (a silent or slow client).</summary>
    public TimeSpan HandshakeTimeout { get; init; } = TimeSpan.FromSeconds(5);

    /// <summary>How long a request's headers may take to arrive (slowloris).</summary>
    public TimeSpan RequestHeadersTimeout { get; init; } = TimeSpan.FromSeconds(10);

    /// <summary>How long an idle keep-alive connection stays open.</summary>
    public TimeSpan KeepAliveTimeout { get; init; } = TimeSpan.FromMinutes(2);

    /// <summary>The clock (certificate validity checks and issue times).</summary>
    public TimeProvider Time { get; init; } = TimeProvider.System;

    /// <summary>Loggers (Kestrel's and the server's); none by default.</summary>
    public ILoggerFactory? Loggers { get; init; }
}

/// <summary>
/// A manager's cluster port: HTTPS on Kestrel (HTTP/1.1 and HTTP/2, TLS 1.2+), serving the server certificate of the
/// manager's <see cref="NodeIdentity"/>, asking every client for a certificate without requiring one. TLS accepts any
/// client certificate; the server itself validates it, per request on authenticated routes, against the cluster's
/// root alone (custom root trust, no system roots, no revocation, no downloads), then reads the caller from its
/// subject and checks the cluster and, for manager routes, the role.
/// <list type="bullet">
/// <item><c>GET /v1/cluster/ca</c> (open) → the root certificate PEM, verbatim (what join tokens hash).</item>
/// <item><c>POST /v1/cluster/join</c> (open) <see cref="JoinRequestBody"/> → <see cref="CertificateResponse"/>: form
/// checks (token format and digest, CSR signature and P-256 key, addresses) happen before the authority is asked, so a
/// refused join records nothing; the authority's role is the certificate's.</item>
/// <item><c>POST /v1/cluster/renew</c> (any node) <see cref="RenewRequestBody"/> → <see cref="CertificateResponse"/>
/// with the node's current role; a removed node is refused.</item>
/// <item>The daemon's routes: <see cref="ClusterServerOptions.NodeRoutes"/>, <see cref="ClusterServerOptions.ManagerRoutes"/>.</item>
/// </list>
/// Errors are <see cref="ClusterError"/> JSON; each refusal is counted in <see cref="Counters"/> by reason. Bodies are
/// capped, handshakes and headers time out and connections are bounded, so hostile input costs one connection and
/// is counted; the server goes on serving. Simplification: a connection that closes before a handshake (a port scan)
/// counts as a failed handshake. Thread-safety: start once; <see cref="UpdateIdentity"/> may be called any time.
/// </summary>
public sealed class ClusterServer : IAsyncDisposable
{
    private const string HandshakeMarkerKey = "UserOverlay.Cluster.TlsHandshakeDone";
    private readonly ClusterServerOptions _options;
    private readonly ILogger _log;
    private NodeIdentity _identity;
    private readonly AddressSlots _perAddress = new();
    private WebApplication? _app;
    private ListenOptions? _listen;

    /// <summary>A server with <paramref name="options"/> (not started).</summary>
    public ClusterServer(ClusterServerOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        CheckIdentity(options.Identity, options.Ca);
        _options = options;
        _identity = options.Identity;
        _log = (options.Loggers ?? NullLoggerFactory.Instance).CreateLogger("UserOverlay.Cluster.Transport.ClusterServer");
    }

    /// <summary>The refusal and event counters.</summary>
    public ClusterServerCounters Counters { get; } = new();

    /// <summary>Where it listens (the bound port once started), else the configured end point.</summary>
    public IPEndPoint EndPoint => _listen?.IPEndPoint ?? _options.EndPoint;

    /// <summary>The identity whose certificate the server presents.</summary>
    public NodeIdentity Identity => Volatile.Read(ref _identity);

    /// <summary>Presents <paramref name="identity"/>'s certificate from the next handshake on (after this manager's renewal).</summary>
    public void UpdateIdentity(NodeIdentity identity)
    {
        CheckIdentity(identity, _options.Ca);
        Volatile.Write(ref _identity, identity);
    }

    /// <summary>Binds and starts serving; throws (the port taken, …) with nothing left running.</summary>
    public async Task StartAsync(CancellationToken cancellationToken = default)
    {
        if (_app is not null) throw new InvalidOperationException("the cluster server is already started");
        var o = _options;
        var loggers = o.Loggers ?? NullLoggerFactory.Instance;
        // The empty builder, as the control server: no configuration files, no file watches.
        var builder = WebApplication.CreateEmptyBuilder(new WebApplicationOptions { ApplicationName = "useroverlay-cluster", ContentRootPath = AppContext.BaseDirectory });
        builder.Services.AddLogging();
        builder.Services.AddSingleton(loggers);
        builder.Services.AddRoutingCore();
        builder.WebHost.UseKestrelCore();
        builder.WebHost.ConfigureKestrel(k =>
        {
            k.AddServerHeader = false;
            k.Limits.MaxConcurrentConnections = o.MaxConnections;
            k.Limits.MaxConcurrentUpgradedConnections = 0;
            k.Limits.MaxRequestBodySize = o.MaxRequestBodyBytes;
            k.Limits.MaxRequestHeadersTotalSize = 16 * 1024;
            k.Limits.MaxRequestLineSize = 8 * 1024;
            k.Limits.RequestHeadersTimeout = o.RequestHeadersTimeout;
            k.Limits.KeepAliveTimeout = o.KeepAliveTimeout;
            k.Limits.MinRequestBodyDataRate = new MinDataRate(bytesPerSecond: 240, gracePeriod: TimeSpan.FromSeconds(5));
            k.Listen(o.EndPoint, listen =>
            {
                _listen = listen;
                listen.Protocols = HttpProtocols.Http1AndHttp2;
                // Before TLS: one address's share of connections is capped, and a connection whose handshake never
                // completes is counted when it ends.
                listen.Use(next => async connection =>
                {
                    var address = (connection.RemoteEndPoint as IPEndPoint)?.Address ?? IPAddress.None;
                    if (!_perAddress.TryEnter(address, o.MaxConnectionsPerAddress))
                    {
                        Counters.Increment(ClusterServerEvent.TooManyConnections);
                        connection.Abort(new ConnectionAbortedException("too many connections from this address"));
                        return;
                    }
                    try { await next(connection).ConfigureAwait(false); }
                    finally
                    {
                        _perAddress.Leave(address);
                        if (!connection.Items.ContainsKey(HandshakeMarkerKey)) Counters.Increment(ClusterServerEvent.TlsHandshakeFailed);
                    }
                });
                listen.UseHttps(new HttpsConnectionAdapterOptions
                {
                    ServerCertificateSelector = (_, _) => Volatile.Read(ref _identity).Certificate,
                    ClientCertificateMode = ClientCertificateMode.AllowCertificate,
                    // Any certificate passes TLS; authenticated routes validate it against the cluster's root (counted by reason).
                    ClientCertificateValidation = (_, _, _) => true,
                    CheckCertificateRevocation = false,
                    SslProtocols = SslProtocols.Tls12 | SslProtocols.Tls13,
                    HandshakeTimeout = o.HandshakeTimeout,
                });
                listen.Use(next => connection =>
                {
                    connection.Items[HandshakeMarkerKey] = true;
                    return next(connection);
                });
            });
        });
        var app = builder.Build();
        app.Use(Guard);
        app.UseRouting();
        app.Use(Authenticate);
        app.MapGet("/v1/cluster/ca", ServeCa);
        app.MapPost("/v1/cluster/join", JoinAsync);
        var nodes = app.MapGroup("").WithMetadata(new ClusterAccess(NodeRole.Worker));
        nodes.MapPost("/v1/cluster/renew", RenewAsync);
        o.NodeRoutes?.Invoke(nodes);
        if (o.ManagerRoutes is { } managerRoutes)
            managerRoutes(app.MapGroup("").WithMetadata(new ClusterAccess(NodeRole.Manager)));
        app.MapFallback(ctx => Error(ctx, StatusCodes.Status404NotFound, ClusterErrorCodes.NotFound,
            $"no such endpoint: {ctx.Request.Method} {ControlException.Printable(ctx.Request.Path.Value)} (the cluster port serves /v1/cluster/ca, /v1/cluster/join, /v1/cluster/renew and the daemon's routes)"));
        try
        {
            await app.StartAsync(cancellationToken).ConfigureAwait(false);
        }
        catch
        {
            await app.DisposeAsync().ConfigureAwait(false);
            _listen = null;
            throw;
        }
        _app = app;
    }

    /// <summary>Stops serving (open connections get a moment to finish).</summary>
    public async Task StopAsync(CancellationToken cancellationToken = default)
    {
        if (_app is { } app)
        {
            _app = null;
            await app.StopAsync(cancellationToken).ConfigureAwait(false);
            await app.DisposeAsync().ConfigureAwait(false);
        }
    }

    /// <summary>Stops serving.</summary>
    public async ValueTask DisposeAsync() => await StopAsync().ConfigureAwait(false);

    // Caps bodies before anything reads them and turns exceptions into counted, one-sentence errors.
    private async Task Guard(HttpContext ctx, RequestDelegate next)
    {
        if (ctx.Request.ContentLength > _options.MaxRequestBodyBytes)
        {
            await Refuse(ctx, ClusterServerEvent.TooLarge, StatusCodes.Status413PayloadTooLarge,
                $"the request body is {ctx.Request.ContentLength} bytes; the cluster port accepts at most {_options.MaxRequestBodyBytes}").ConfigureAwait(false);
            return;
        }
        try { await next(ctx).ConfigureAwait(false); }
        catch (Microsoft.AspNetCore.Http.BadHttpRequestException e) when (!ctx.Response.HasStarted)
        {
            if (e.StatusCode == StatusCodes.Status413PayloadTooLarge)
                await Refuse(ctx, ClusterServerEvent.TooLarge, 413, $"the request body is larger than the {_options.MaxRequestBodyBytes} bytes the cluster port accepts").ConfigureAwait(false);
            else
                await Refuse(ctx, ClusterServerEvent.MalformedRequest, 400, $"the request could not be read ({e.Message.TrimEnd('.')})").ConfigureAwait(false);
        }
        catch (ControlException e) when (!ctx.Response.HasStarted)
        {
            // From the daemon's own routes: the control API's statuses, the exception's code (not a refusal to count).
            int status = StatusOf(e.Code);
            if (status >= 500) Counters.Increment(ClusterServerEvent.InternalError);
            await Error(ctx, status, e.Code, e.Message).ConfigureAwait(false);
        }
        catch (StoreException e) when (!ctx.Response.HasStarted)
        {
            await Error(ctx, 503, ClusterErrorCodes.Unavailable, $"the cluster's store cannot serve this now ({e.Message.TrimEnd('.')}); try again or ask another manager").ConfigureAwait(false);
        }
        catch (Exception e) when (!ctx.Response.HasStarted && e is not OperationCanceledException)
        {
            Counters.Increment(ClusterServerEvent.InternalError);
            _log.LogError(e, "cluster port: {Method} {Path} failed", ctx.Request.Method, ctx.Request.Path);
            await Error(ctx, 500, ClusterErrorCodes.Internal, "the manager failed to serve this request (its log says why); try again or ask another manager").ConfigureAwait(false);
        }
    }

    /// <summary>The HTTP status of a <see cref="ControlException"/> code (as the daemon's control API maps them).</summary>
    public static int StatusOf(string controlCode) => controlCode switch
    {
        ControlErrorCodes.InvalidArgument or ControlErrorCodes.Ambiguous => 400,
        ControlErrorCodes.PermissionDenied => 403,
        ControlErrorCodes.NotFound => 404,
        ControlErrorCodes.Conflict or ControlErrorCodes.InUse or ControlErrorCodes.Exhausted => 409,
        _ => 500,
    };

    // Authenticated routes (their group's metadata says so): a valid certificate of this cluster, and the role.
    private async Task Authenticate(HttpContext ctx, RequestDelegate next)
    {
        if (ctx.GetEndpoint()?.Metadata.GetMetadata<ClusterAccess>() is not { } access)
        {
            await next(ctx).ConfigureAwait(false);
            return;
        }
        var cert = ctx.Connection.ClientCertificate;
        if (cert is null)
        {
            await Refuse(ctx, ClusterServerEvent.NoCertificate, 401,
                "this route needs the node's cluster certificate, and the connection presented none").ConfigureAwait(false);
            return;
        }
        var ca = _options.Ca;
        if (NodeCertificates.ValidateChain(cert, ca.Certificate, _options.Time.GetUtcNow(), NodeCertificates.ClientAuthOid) is { } why)
        {
            await Refuse(ctx, ClusterServerEvent.ForeignCertificate, 401, $"the client certificate is not accepted: {why}").ConfigureAwait(false);
            return;
        }
        if (!NodeCertificates.TryReadSubject(cert, out var subject, out string error))
        {
            await Refuse(ctx, ClusterServerEvent.ForeignCertificate, 401, $"the client certificate is not a node's: {error}").ConfigureAwait(false);
            return;
        }
        if (subject.ClusterId != ca.ClusterId)
        {
            await Refuse(ctx, ClusterServerEvent.WrongCluster, 403,
                $"the client certificate is for cluster '{ControlException.Printable(subject.ClusterId)}'; this is cluster '{ca.ClusterId}'").ConfigureAwait(false);
            return;
        }
        var role = subject.Role;
        if (_options.VerifyCallers)
        {
            var current = await _options.Authority.CurrentRoleAsync(subject.NodeId, ctx.RequestAborted).ConfigureAwait(false);
            if (current is null)
            {
                await Refuse(ctx, ClusterServerEvent.UnknownNode, 403,
                    $"node {subject.NodeId} is no longer in the cluster (it was removed); join again with a token").ConfigureAwait(false);
                return;
            }
            if (current == NodeRole.Worker) role = NodeRole.Worker;
        }
        if (access.Role == NodeRole.Manager && role != NodeRole.Manager)
        {
            await Refuse(ctx, ClusterServerEvent.NotManager, 403,
                $"only managers may call {ctx.Request.Method} {ControlException.Printable(ctx.Request.Path.Value)}, and node {subject.NodeId} is a worker").ConfigureAwait(false);
            return;
        }
        ctx.SetClusterCaller(new ClusterCaller(subject.NodeId, role, subject.ClusterId, cert));
        await next(ctx).ConfigureAwait(false);
    }

    private async Task ServeCa(HttpContext ctx)
    {
        Counters.Increment(ClusterServerEvent.CaServed);
        ctx.Response.ContentType = "application/x-pem-file";
        await ctx.Response.Body.WriteAsync(Encoding.UTF8.GetBytes(_options.Ca.CertificatePem), ctx.RequestAborted).ConfigureAwait(false);
    }

    private async Task JoinAsync(HttpContext ctx)
    {
        Counters.Increment(ClusterServerEvent.JoinRequests);
        var body = await ReadBodyAsync(ctx, ClusterWireJson.Default.JoinRequestBody).ConfigureAwait(false);
        if (body is null) return;
        var ca = _options.Ca;
        if (!JoinToken.TryParse(body.Token, out var token, out string tokenError))
        {
            await Refuse(ctx, ClusterServerEvent.BadToken, 403, $"token: {tokenError}").ConfigureAwait(false);
            return;
        }
        if (!token.MatchesRoot(ca.CertificatePem))
        {
            await Refuse(ctx, ClusterServerEvent.BadToken, 403,
                "token: the token is for another cluster (its CA digest is not this manager's CA)").ConfigureAwait(false);
            return;
        }
        if (FieldError(body) is { } fieldError)
        {
            await Refuse(ctx, ClusterServerEvent.MalformedRequest, 400, fieldError).ConfigureAwait(false);
            return;
        }
        if (await ReadCsrAsync(ctx, body.CsrPem!).ConfigureAwait(false) is not { } csr) return;
        var request = new JoinRequest(token, body.Hostname!, body.AdvertiseAddr!, body.DataPathAddr!, ctx.Connection.RemoteIpAddress);
        JoinDecision decision;
        try { decision = await _options.Authority.JoinAsync(request, ctx.RequestAborted).ConfigureAwait(false); }
        catch (ControlException e)
        {
            // An authority that throws, as ClusterManager.AdmitAsync does.
            decision = JoinDecision.Refuse(e.Code switch
            {
                ControlErrorCodes.PermissionDenied => JoinRefusal.BadToken,
                ControlErrorCodes.InvalidArgument => JoinRefusal.Invalid,
                ControlErrorCodes.Conflict or ControlErrorCodes.InUse => JoinRefusal.Conflict,
                ControlErrorCodes.NotFound or ControlErrorCodes.StorageFailed => JoinRefusal.Unavailable,
                _ => throw new InvalidOperationException($"the join authority failed: {e.Message}", e),
            }, e.Message);
        }
        catch (StoreException e)
        {
            decision = JoinDecision.Refuse(JoinRefusal.Unavailable, $"the cluster's store cannot admit nodes now ({e.Message.TrimEnd('.')}); try again or join through another manager");
        }
        if (!decision.Admitted)
        {
            var (ev, status, code) = decision.Refusal switch
            {
                JoinRefusal.BadToken or JoinRefusal.RotatedToken => (ClusterServerEvent.BadToken, 403, ClusterServerCounters.NameOf(ClusterServerEvent.BadToken)),
                JoinRefusal.Invalid => (ClusterServerEvent.MalformedRequest, 400, ClusterServerCounters.NameOf(ClusterServerEvent.MalformedRequest)),
                JoinRefusal.Conflict => (ClusterServerEvent.JoinRefused, 409, ClusterErrorCodes.Conflict),
                _ => (ClusterServerEvent.JoinRefused, 503, ClusterErrorCodes.Unavailable),
            };
            Counters.Increment(ev);
            await Error(ctx, status, code, decision.Message).ConfigureAwait(false);
            return;
        }
        using var cert = ca.IssueNodeCertificate(csr, decision.NodeId, decision.Role, _options.NodeCertificateLifetime);
        Counters.Increment(decision.Role == NodeRole.Manager ? ClusterServerEvent.JoinedManager : ClusterServerEvent.JoinedWorker);
        _log.LogInformation("cluster port: node {NodeId} ({Hostname}, {Address}) joined as {Role}", decision.NodeId,
            ControlException.Printable(request.Hostname), request.AdvertiseAddress, decision.Role);
        await WriteJson(ctx, 200, Response(decision.NodeId, decision.Role, cert), ClusterWireJson.Default.CertificateResponse).ConfigureAwait(false);
    }

    private async Task RenewAsync(HttpContext ctx)
    {
        var caller = ctx.GetClusterCaller();
        var body = await ReadBodyAsync(ctx, ClusterWireJson.Default.RenewRequestBody).ConfigureAwait(false);
        if (body is null) return;
        if (string.IsNullOrWhiteSpace(body.CsrPem))
        {
            await Refuse(ctx, ClusterServerEvent.MalformedRequest, 400, "csr_pem: missing (a certificate request for the node's key, PEM)").ConfigureAwait(false);
            return;
        }
        if (await ReadCsrAsync(ctx, body.CsrPem).ConfigureAwait(false) is not { } csr) return;
        var role = await _options.Authority.CurrentRoleAsync(caller.NodeId, ctx.RequestAborted).ConfigureAwait(false);
        if (role is null)
        {
            await Refuse(ctx, ClusterServerEvent.UnknownNode, 403,
                $"node {caller.NodeId} is no longer in the cluster (it was removed); join again with a token").ConfigureAwait(false);
            return;
        }
        using var cert = _options.Ca.IssueNodeCertificate(csr, caller.NodeId, role.Value, _options.NodeCertificateLifetime);
        Counters.Increment(ClusterServerEvent.Renewed);
        await WriteJson(ctx, 200, Response(caller.NodeId, role.Value, cert), ClusterWireJson.Default.CertificateResponse).ConfigureAwait(false);
    }

    private CertificateResponse Response(string nodeId, NodeRole role, X509Certificate2 cert) =>
        new(nodeId, role == NodeRole.Manager ? "manager" : "worker", cert.ExportCertificatePem(), _options.Ca.CertificatePem);

    private static string? FieldError(JoinRequestBody b)
    {
        if (string.IsNullOrWhiteSpace(b.CsrPem)) return "csr_pem: missing (a certificate request for the node's key, PEM)";
        if (string.IsNullOrWhiteSpace(b.Hostname)) return "hostname: missing";
        if (b.Hostname.Length > 253 || b.Hostname.Any(char.IsControl) || b.Hostname.Trim() != b.Hostname)
            return $"hostname: '{ControlException.Printable(b.Hostname.Length > 64 ? b.Hostname[..64] + "…" : b.Hostname)}' is not a host name (1–253 characters, no control characters or surrounding spaces)";
        if (string.IsNullOrWhiteSpace(b.AdvertiseAddr)) return "advertise_addr: missing (IP:PORT of the node's control API)";
        if (!IPEndPoint.TryParse(b.AdvertiseAddr, out var ep) || ep.Port == 0 || !b.AdvertiseAddr.Contains(':', StringComparison.Ordinal))
            return $"advertise_addr: '{ControlException.Printable(b.AdvertiseAddr)}' is not IP:PORT";
        if (string.IsNullOrWhiteSpace(b.DataPathAddr)) return "data_path_addr: missing (the node's underlay IP address)";
        if (!IPAddress.TryParse(b.DataPathAddr, out _)) return $"data_path_addr: '{ControlException.Printable(b.DataPathAddr)}' is not an IP address";
        return null;
    }

    // The request's CSR, or null after answering 400.
    private async Task<CertificateRequest?> ReadCsrAsync(HttpContext ctx, string pem)
    {
        try { return ClusterCa.ReadSigningRequest(pem); }
        catch (ControlException e)
        {
            await Refuse(ctx, ClusterServerEvent.MalformedRequest, 400, e.Message).ConfigureAwait(false);
            return null;
        }
    }

    // The body as T, or null after answering 400 (not JSON, not an object) — 413 comes from the Guard.
    private async Task<T?> ReadBodyAsync<T>(HttpContext ctx, JsonTypeInfo<T> type) where T : class
    {
        T? value;
        try { value = await JsonSerializer.DeserializeAsync(ctx.Request.Body, type, ctx.RequestAborted).ConfigureAwait(false); }
        catch (JsonException e)
        {
            await Refuse(ctx, ClusterServerEvent.MalformedRequest, 400, $"the request body is not the route's JSON ({e.Message.Split('.')[0]})").ConfigureAwait(false);
            return null;
        }
        if (value is null)
            await Refuse(ctx, ClusterServerEvent.MalformedRequest, 400, "the request body is not a JSON object").ConfigureAwait(false);
        return value;
    }

    private Task Refuse(HttpContext ctx, ClusterServerEvent e, int status, string message)
    {
        Counters.Increment(e);
        return Error(ctx, status, ClusterServerCounters.NameOf(e), message);
    }

    private static Task Error(HttpContext ctx, int status, string code, string message) =>
        WriteJson(ctx, status, new ClusterError(code, message), ClusterWireJson.Default.ClusterError);

    private static Task WriteJson<T>(HttpContext ctx, int status, T value, JsonTypeInfo<T> type)
    {
        ctx.Response.StatusCode = status;
        return ctx.Response.WriteAsJsonAsync(value, type, contentType: null, ctx.RequestAborted);
    }

    private static void CheckIdentity(NodeIdentity identity, ClusterCa ca)
    {
        ArgumentNullException.ThrowIfNull(identity);
        ArgumentNullException.ThrowIfNull(ca);
        if (identity.Role != NodeRole.Manager)
            throw new ArgumentException($"the cluster port serves with a manager's certificate; node {identity.NodeId}'s is a worker's", nameof(identity));
        if (!identity.Root.RawDataMemory.Span.SequenceEqual(ca.Certificate.RawDataMemory.Span))
            throw new ArgumentException("the identity's root is not the CA's certificate", nameof(identity));
    }

    /// <summary>Connections in progress per remote address (entries removed at zero).</summary>
    private sealed class AddressSlots
    {
        private readonly Dictionary<IPAddress, int> _counts = [];
        private readonly Lock _lock = new();

        public bool TryEnter(IPAddress address, int max)
        {
            lock (_lock)
            {
                _counts.TryGetValue(address, out int n);
                if (n >= max) return false;
                _counts[address] = n + 1;
                return true;
            }
        }

        public void Leave(IPAddress address)
        {
            lock (_lock)
            {
                if (_counts.TryGetValue(address, out int n) && n > 1) _counts[address] = n - 1;
                else _counts.Remove(address);
            }
        }
    }

    /// <summary>Marks a route group: who may call it.</summary>
    private sealed record ClusterAccess(NodeRole Role);
}
