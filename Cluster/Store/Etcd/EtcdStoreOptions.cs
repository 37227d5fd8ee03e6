namespace UserOverlay.Cluster.Store.Etcd;

/// <summary>
/// Where and how <see cref="EtcdClusterStore"/> reaches etcd: its client endpoints, the key prefix the cluster's
/// keys live under, TLS, timeouts and (optionally) the history the store compacts to.
/// </summary>
public sealed record EtcdStoreOptions
{
    /// <summary>The members' client URLs (<c>http://HOST:PORT</c>, or <c>https://</c> with TLS); at least one.</summary>
    public IReadOnlyList<Uri> Endpoints { get; init; } = [];

    /// <summary>
    /// Every key is stored under this prefix and stripped from the keys returned; ranges, prefix deletes and
    /// watches stay inside it. Non-empty, so that several clusters (or other users) may share one etcd.
    /// </summary>
    public string KeyPrefix { get; init; } = "/useroverlay/";

    /// <summary>PEM file of the CA that signed the members' server certificates (null: the system's roots).</summary>
    public string? CaFile { get; init; }

    /// <summary>PEM file of the client certificate, for members run with <c>--client-cert-auth</c> (with <see cref="ClientKeyFile"/>).</summary>
    public string? ClientCertificateFile { get; init; }

    /// <summary>PEM file of the client certificate's private key.</summary>
    public string? ClientKeyFile { get; init; }

    /// <summary>How long one call may take, retries on other members included, before it fails as <see cref="StoreErrorCode.Unavailable"/>.</summary>
    public TimeSpan RequestTimeout { get; init; } = TimeSpan.FromSeconds(5);

    /// <summary>How long connecting to one member may take.</summary>
    public TimeSpan ConnectTimeout { get; init; } = TimeSpan.FromSeconds(2);

    /// <summary>
    /// How long a watch keeps reconnecting (resuming from the last revision it delivered + 1) before it fails as
    /// <see cref="StoreErrorCode.Unavailable"/>.
    /// </summary>
    public TimeSpan WatchReconnectTimeout { get; init; } = TimeSpan.FromSeconds(30);

    /// <summary>
    /// When above 0, the store compacts etcd's history itself, keeping at least this many revisions behind the
    /// newest one it wrote (a watch from an older revision then gets <see cref="StoreErrorCode.Compacted"/>). 0
    /// (the default) leaves compaction to etcd's own <c>--auto-compaction-*</c> settings. Compaction is global to
    /// an etcd cluster: set this only where the cluster's state is etcd's only user.
    /// </summary>
    public int CompactionRetention { get; init; }

    /// <summary>
    /// Options from a store URL: <c>etcd://HOST:PORT[,HOST:PORT…][/PREFIX/]</c> (plain HTTP) or
    /// <c>etcds://…</c> (TLS; the files are set separately). The prefix defaults to <c>/useroverlay/</c>.
    /// </summary>
    /// <exception cref="ArgumentException">The URL is malformed (the message names the part).</exception>
    public static EtcdStoreOptions Parse(string url)
    {
        ArgumentNullException.ThrowIfNull(url);
        string scheme;
        string rest;
        if (url.StartsWith("etcd://", StringComparison.OrdinalIgnoreCase)) (scheme, rest) = ("http", url[7..]);
        else if (url.StartsWith("etcds://", StringComparison.OrdinalIgnoreCase)) (scheme, rest) = ("https", url[8..]);
        else throw new ArgumentException($"store: '{url}' is not etcd://HOST:PORT[,HOST:PORT…][/PREFIX/] or etcds://…", nameof(url));
        int slash = rest.IndexOf('/');
        string hosts = slash < 0 ? rest : rest[..slash];
        string prefix = slash < 0 || slash == rest.Length - 1 ? "/useroverlay/" : rest[slash..];
        if (!prefix.EndsWith('/')) prefix += "/";
        var endpoints = new List<Uri>();
        foreach (string host in hosts.Split(',', StringSplitOptions.TrimEntries))
        {
            if (host.Length == 0 || !Uri.TryCreate($"{scheme}://{host}", UriKind.Absolute, out var uri) || uri.AbsolutePath != "/" || uri.IsDefaultPort && !host.Contains(':'))
                throw new ArgumentException($"store: endpoint '{host}' of '{url}' is not HOST:PORT", nameof(url));
            endpoints.Add(uri);
        }
        return new EtcdStoreOptions { Endpoints = endpoints, KeyPrefix = prefix };
    }

    /// <summary>The first problem with these options (naming the field), or null.</summary>
    internal string? Validate()
    {
        if (Endpoints is null || Endpoints.Count == 0) return "endpoints: at least one etcd client URL is required";
        for (int i = 0; i < Endpoints.Count; i++)
        {
            var e = Endpoints[i];
            if (e is null || !e.IsAbsoluteUri || e.Scheme is not ("http" or "https") || e.Host.Length == 0)
                return $"endpoints[{i}]: '{e}' is not http://HOST:PORT or https://HOST:PORT";
            if (e.Scheme != Endpoints[0].Scheme) return $"endpoints[{i}]: '{e}' mixes http and https";
        }
        if (string.IsNullOrEmpty(KeyPrefix)) return "keyPrefix: a non-empty prefix is required (etcd may hold other data)";
        if ((ClientCertificateFile is null) != (ClientKeyFile is null)) return "clientCertificateFile/clientKeyFile: give both or neither";
        foreach (var (field, file) in new[] { ("caFile", CaFile), ("clientCertificateFile", ClientCertificateFile), ("clientKeyFile", ClientKeyFile) })
            if (file is not null && !File.Exists(file)) return $"{field}: '{file}' does not exist";
        if ((CaFile is not null || ClientCertificateFile is not null) && Endpoints[0].Scheme != "https")
            return "endpoints: TLS files are given but the endpoints are http://";
        if (RequestTimeout <= TimeSpan.Zero) return $"requestTimeout: {RequestTimeout} is not positive";
        if (ConnectTimeout <= TimeSpan.Zero) return $"connectTimeout: {ConnectTimeout} is not positive";
        if (WatchReconnectTimeout <= TimeSpan.Zero) return $"watchReconnectTimeout: {WatchReconnectTimeout} is not positive";
        if (CompactionRetention < 0) return $"compactionRetention: {CompactionRetention} is negative";
        return null;
    }
}
