using System.Net.Http.Json;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using System.Text.Json;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using UserOverlay.Cluster.Manager;
using UserOverlay.Cluster.Security;
using UserOverlay.Cluster.Store;
using UserOverlay.Cluster.Store.Etcd;
using UserOverlay.Cluster.Transport;
using UserOverlay.Control.Networks;

namespace UserOverlay.Cluster.Node;

/// <summary>
/// The managers' store when it is etcd (<c>swarm init --store etcd://…</c>): the options given to init, checked (each
/// error names its option); the files every manager keeps for it in STATE/cluster — <c>store/</c> (copies of the TLS
/// files) and <c>seal.key</c> (mode 0600: the key the secrets are sealed under in etcd); the store opened
/// (<see cref="EtcdClusterStore"/> under <see cref="SealingClusterStore"/>); and the hand-over to a manager that joins
/// (<c>GET /v1/cluster/store</c>, for managers only, over the mutual-TLS control port).
/// </summary>
public sealed partial class ClusterNode
{
    private string StoreDirectory => Path.Combine(Directory, "store");
    private string SealKeyFile => Path.Combine(Directory, "seal.key");
    private string StoreCaFile => Path.Combine(StoreDirectory, "ca.pem");
    private string StoreCertFile => Path.Combine(StoreDirectory, "client.pem");
    private string StoreKeyFile => Path.Combine(StoreDirectory, "client-key.pem");

    private const UnixFileMode OwnerOnly = UnixFileMode.UserRead | UnixFileMode.UserWrite;
    private const UnixFileMode OwnerOnlyDirectory = UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute;

    private ClusterMembership? _connecting; // a manager on etcd waiting for etcd after a restart
    private volatile string? _connectError;
    private CancellationTokenSource? _connectStop;
    private Task? _connectLoop;

    /// <summary>How often a restarted manager whose etcd does not answer tries again.</summary>
    internal TimeSpan StoreRetryInterval { get; init; } = TimeSpan.FromSeconds(2);

    // Retries the manager's start until etcd answers; the status says "connecting" meanwhile.
    private void StartConnecting(ClusterMembership membership, NodeIdentity identity, string reason)
    {
        _connectError = reason;
        Volatile.Write(ref _connecting, membership);
        LogStoreAway(reason);
        var stop = _connectStop = new CancellationTokenSource();
        _connectLoop = Task.Run(async () =>
        {
            while (!stop.IsCancellationRequested)
            {
                try { await Task.Delay(StoreRetryInterval, stop.Token).ConfigureAwait(false); }
                catch (OperationCanceledException) { break; }
                await _gate.WaitAsync(CancellationToken.None).ConfigureAwait(false);
                try
                {
                    if (stop.IsCancellationRequested) break;
                    var parts = await StartManagerAsync(membership, identity, ca: null, bootstrap: null, stop.Token, resuming: true).ConfigureAwait(false);
                    Volatile.Write(ref _parts, parts);
                    Volatile.Write(ref _connecting, null);
                    LogResumed(RoleName(membership.Role), membership.ClusterId, parts.Api.Peer);
                    return;
                }
                catch (Exception e) when (e is ControlException or StoreException or OperationCanceledException or IOException)
                {
                    _connectError = e.Message;
                }
                finally { _gate.Release(); }
            }
            identity.Dispose();
        });
    }

    private async Task StopConnectingAsync()
    {
        if (Interlocked.Exchange(ref _connectStop, null) is not { } stop) return;
        await stop.CancelAsync().ConfigureAwait(false);
        if (_connectLoop is { } loop) await loop.ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
        stop.Dispose();
        Volatile.Write(ref _connecting, null);
    }

    [Microsoft.Extensions.Logging.LoggerMessage(Level = Microsoft.Extensions.Logging.LogLevel.Warning, Message = "cluster: this manager's store does not answer ({Reason}); the host forwards with the state it has, and the manager starts once the store answers")]
    private partial void LogStoreAway(string reason);

    /// <summary>What <c>--store</c> and its options asked for, checked; null for the embedded store.</summary>
    private static StoreHandover? ParseStore(SwarmInitRequest request)
    {
        string? kind = request.Store?.Trim();
        if (string.IsNullOrEmpty(kind) || kind is "raft" or "embedded")
        {
            foreach (var (field, value) in new[] { ("store-prefix", request.StorePrefix), ("store-ca", request.StoreCa), ("store-cert", request.StoreCert), ("store-key", request.StoreKey) })
                if (value is not null) throw ControlException.Invalid(field, "applies to an etcd store only (give --store etcd://HOST:PORT[,HOST:PORT…])");
            return null;
        }
        EtcdStoreOptions parsed;
        try { parsed = EtcdStoreOptions.Parse(kind); }
        catch (ArgumentException e)
        {
            throw ControlException.Invalid("store", $"'{ControlException.Printable(kind)}' is not raft or etcd://HOST:PORT[,HOST:PORT…] ({e.Message.Replace("store: ", "", StringComparison.Ordinal).Split(" (Parameter", 2)[0]})");
        }
        string prefix = parsed.KeyPrefix;
        if (request.StorePrefix is { } p)
        {
            p = p.Trim();
            if (!p.StartsWith('/') || p.Any(c => char.IsControl(c) || char.IsWhiteSpace(c)) || p.Length > 256)
                throw ControlException.Invalid("store-prefix", $"'{ControlException.Printable(p)}' is not a key prefix like /useroverlay (it starts with /, has no spaces, at most 256 characters)");
            if (p.Trim('/').Length == 0)
                throw ControlException.Invalid("store-prefix", "'/' is all of etcd; give the cluster a prefix of its own, e.g. /useroverlay");
            prefix = p.TrimEnd('/') + "/";
        }
        string? ca = ReadPem("store-ca", request.StoreCa);
        string? cert = ReadPem("store-cert", request.StoreCert);
        string? key = ReadPem("store-key", request.StoreKey);
        if ((cert is null) != (key is null))
            throw ControlException.Invalid(cert is null ? "store-cert" : "store-key", "--store-cert and --store-key go together (etcd's --client-cert-auth needs both)");
        if (ca is not null)
        {
            var roots = new X509Certificate2Collection();
            try { roots.ImportFromPem(ca); }
            catch (CryptographicException e) { throw ControlException.Invalid("store-ca", $"'{request.StoreCa}' is not a PEM certificate: {e.Message}"); }
            if (roots.Count == 0) throw ControlException.Invalid("store-ca", $"'{request.StoreCa}' holds no PEM certificate");
            foreach (var r in roots) r.Dispose();
        }
        if (cert is not null)
        {
            try { using var alone = X509Certificate2.CreateFromPem(cert); }
            catch (Exception e) when (e is CryptographicException or ArgumentException) { throw ControlException.Invalid("store-cert", $"'{request.StoreCert}' is not a PEM certificate ({Sentence(e)})"); }
            try { using var pair = X509Certificate2.CreateFromPem(cert, key); }
            catch (Exception e) when (e is CryptographicException or ArgumentException) { throw ControlException.Invalid("store-key", $"'{request.StoreKey}' is not the private key of the certificate in '{request.StoreCert}' ({Sentence(e)})"); }
        }
        bool tls = ca is not null || cert is not null || parsed.Endpoints[0].Scheme == "https";
        var endpoints = parsed.Endpoints.Select(e => new UriBuilder(e) { Scheme = tls ? "https" : "http", Port = e.Port }.Uri.GetLeftPart(UriPartial.Authority)).ToList();
        return new StoreHandover("etcd", endpoints, prefix, ca, cert, key, null);
    }

    private static string Sentence(Exception e) => e.Message.Split(" (Parameter", 2)[0];

    private static string? ReadPem(string field, string? path)
    {
        if (path is null) return null;
        if (path.Length == 0) throw ControlException.Invalid(field, "is empty; give a PEM file's path");
        if (!File.Exists(path)) throw ControlException.Invalid(field, $"'{ControlException.Printable(path)}' does not exist (the path is read by the router's daemon)");
        try { return File.ReadAllText(path); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { throw ControlException.Invalid(field, $"'{path}' cannot be read: {e.Message}"); }
    }

    /// <summary>
    /// Keeps the store's files in STATE/cluster (the TLS files' copies, the seal key — new at init, the cluster's one on
    /// a join) and returns what the membership records.
    /// </summary>
    private StoreSettings SaveStore(StoreHandover store, byte[] sealKey)
    {
        System.IO.Directory.CreateDirectory(StoreDirectory, OwnerOnlyDirectory);
        foreach (var (file, pem) in new[] { (StoreCaFile, store.CaPem), (StoreCertFile, store.CertPem), (StoreKeyFile, store.KeyPem) })
            if (pem is not null) WriteOwnerOnly(file, System.Text.Encoding.UTF8.GetBytes(pem));
        WriteOwnerOnly(SealKeyFile, sealKey);
        return new StoreSettings { Kind = store.Kind, Endpoints = store.Endpoints, Prefix = store.Prefix };
    }

    private static void WriteOwnerOnly(string path, byte[] content)
    {
        using var f = new FileStream(path, new FileStreamOptions { Mode = FileMode.Create, Access = FileAccess.Write, UnixCreateMode = OwnerOnly });
        f.Write(content);
        File.SetUnixFileMode(path, OwnerOnly);
    }

    /// <summary>
    /// Opens the etcd store of <paramref name="settings"/> with the files in STATE/cluster, sealed with seal.key.
    /// Refusals name the option: <c>store</c> when no member answers (or TLS fails), with the endpoints.
    /// </summary>
    private async Task<(IClusterStore Store, SealedValues Seal)> OpenStoreAsync(StoreSettings settings, CancellationToken cancellationToken)
    {
        byte[] key;
        try { key = await File.ReadAllBytesAsync(SealKeyFile, cancellationToken).ConfigureAwait(false); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new ControlException(ControlErrorCodes.CorruptState, $"store: cannot read the seal key {SealKeyFile}: {e.Message}; a manager on etcd needs it (copy it from another manager)", "store");
        }
        if (key.Length != SealedValues.KeySize)
            throw new ControlException(ControlErrorCodes.CorruptState, $"store: {SealKeyFile} holds {key.Length} bytes, not a {SealedValues.KeySize}-byte seal key", "store");
        var options = new EtcdStoreOptions
        {
            Endpoints = [.. settings.Endpoints.Select(e => new Uri(e))],
            KeyPrefix = settings.Prefix,
            CaFile = File.Exists(StoreCaFile) ? StoreCaFile : null,
            ClientCertificateFile = File.Exists(StoreCertFile) ? StoreCertFile : null,
            ClientKeyFile = File.Exists(StoreKeyFile) ? StoreKeyFile : null,
            RequestTimeout = StoreRequestTimeout,
        };
        var seal = new SealedValues(key);
        CryptographicOperations.ZeroMemory(key);
        try
        {
            var etcd = await EtcdClusterStore.ConnectAsync(options, cancellationToken).ConfigureAwait(false);
            return (new SealingClusterStore(etcd, seal), seal);
        }
        catch (Exception e) when (e is ArgumentException or StoreException)
        {
            seal.Dispose();
            throw new ControlException(e is ArgumentException ? ControlErrorCodes.InvalidArgument : ControlErrorCodes.Unavailable,
                $"store: etcd at {string.Join(", ", settings.Endpoints)} cannot be used: {e.Message.Split(" (Parameter", 2)[0]}", "store", e);
        }
    }

    /// <summary>How long one call to etcd may take (tests shorten it).</summary>
    internal TimeSpan StoreRequestTimeout { get; init; } = TimeSpan.FromSeconds(5);

    /// <summary>
    /// Deletes the cluster's keys from the store, provided it still holds cluster <paramref name="clusterId"/>: a failed
    /// init leaves nothing in etcd, and the last manager leaving (--force) ends the cluster there too.
    /// </summary>
    private static async Task EraseClusterAsync(IClusterStore store, string clusterId)
    {
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(10));
        var r = await store.GetAsync(ClusterKeys.Info, timeout.Token).ConfigureAwait(false);
        if (r.Kvs.Count == 0 || ClusterManager.Decode(r.Kvs[0], ClusterJson.Default.ClusterInfo).Id != clusterId) return;
        await store.TxnAsync(new TxnRequest([Compare.ModifiedAt(ClusterKeys.Info, r.Kvs[0].ModRevision)], [Op.DeletePrefix("")]), timeout.Token).ConfigureAwait(false);
    }

    /// <summary>
    /// A manager joining (or a promoted worker) asks the manager it joins through which store the cluster keeps: for
    /// etcd the settings, the TLS files and the seal key come back over the mutual-TLS control port (managers' route),
    /// and are kept in STATE/cluster. An older manager without the route, or an embedded store: null.
    /// </summary>
    private async Task<StoreSettings?> AdoptStoreThroughAsync(string manager, NodeIdentity identity, CancellationToken cancellationToken)
    {
        using var http = new ClusterClient().CreateHttpClient(identity, manager);
        http.Timeout = TimeSpan.FromSeconds(30);
        StoreHandover? handover;
        try
        {
            using var response = await http.GetAsync("/v1/cluster/store", cancellationToken).ConfigureAwait(false);
            if (response.StatusCode == System.Net.HttpStatusCode.NotFound) return null;
            if (!response.IsSuccessStatusCode)
                throw new ControlException(ControlErrorCodes.Unavailable,
                    $"manager: the manager at {manager} did not say which store the cluster keeps ({(int)response.StatusCode}: {await response.Content.ReadAsStringAsync(cancellationToken).ConfigureAwait(false)})", "manager");
            handover = await response.Content.ReadFromJsonAsync(ClusterStateJson.Default.StoreHandover, cancellationToken).ConfigureAwait(false);
        }
        catch (Exception e) when (e is HttpRequestException or TaskCanceledException or JsonException)
        {
            throw new ControlException(ControlErrorCodes.Unavailable, $"manager: the manager at {manager} did not say which store the cluster keeps: {e.Message}", "manager");
        }
        if (handover is null || handover.Kind == "raft") return null;
        if (handover.Kind != "etcd" || handover.SealKey is null || handover.Endpoints is not { Count: > 0 } || string.IsNullOrEmpty(handover.Prefix))
            throw new ControlException(ControlErrorCodes.Internal, $"manager: the manager at {manager} described a store this build does not know ({handover.Kind})", "manager");
        byte[] seal = Convert.FromBase64String(handover.SealKey);
        try { return SaveStore(handover, seal); }
        finally { CryptographicOperations.ZeroMemory(seal); }
    }

    /// <summary>
    /// <c>GET /v1/cluster/store</c> (managers only): which store the cluster keeps; for etcd with what a manager needs
    /// to serve it — the endpoints, the prefix, the TLS files and the seal key.
    /// </summary>
    private void MapStoreRoutes(Microsoft.AspNetCore.Routing.RouteGroupBuilder managers, StoreSettings? settings)
    {
        managers.MapGet("/v1/cluster/store", (RequestDelegate)(async c =>
        {
            StoreHandover body;
            if (settings is null) body = new StoreHandover("raft", [], "", null, null, null, null);
            else
            {
                string? Read(string file) => File.Exists(file) ? File.ReadAllText(file) : null;
                byte[] seal = await File.ReadAllBytesAsync(SealKeyFile, c.RequestAborted).ConfigureAwait(false);
                body = new StoreHandover(settings.Kind, settings.Endpoints, settings.Prefix, Read(StoreCaFile), Read(StoreCertFile), Read(StoreKeyFile), Convert.ToBase64String(seal));
                CryptographicOperations.ZeroMemory(seal);
            }
            c.Response.Headers.CacheControl = "no-store";
            await c.Response.WriteAsJsonAsync(body, ClusterStateJson.Default.StoreHandover, cancellationToken: c.RequestAborted).ConfigureAwait(false);
        }));
    }
}

/// <summary>What STATE/cluster/membership.json records of a manager's store when it is not the embedded one.</summary>
internal sealed record StoreSettings
{
    /// <summary>"etcd".</summary>
    public required string Kind { get; init; }
    /// <summary>The members' client URLs (http:// or https://).</summary>
    public required IReadOnlyList<string> Endpoints { get; init; }
    /// <summary>The key prefix, ending in '/'.</summary>
    public required string Prefix { get; init; }
}

/// <summary>The store, as a manager hands it to another (<c>GET /v1/cluster/store</c>), and as <c>swarm init</c> parsed it.</summary>
/// <param name="Kind">"raft" (embedded) or "etcd".</param>
/// <param name="Endpoints">The members' client URLs.</param>
/// <param name="Prefix">The key prefix.</param>
/// <param name="CaPem">The CA of etcd's server certificates, if any.</param>
/// <param name="CertPem">The client certificate, if any.</param>
/// <param name="KeyPem">Its private key.</param>
/// <param name="SealKey">The seal key, base64 (hand-over only).</param>
internal sealed record StoreHandover(string Kind, IReadOnlyList<string> Endpoints, string Prefix, string? CaPem, string? CertPem, string? KeyPem, string? SealKey);
