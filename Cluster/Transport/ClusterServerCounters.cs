namespace UserOverlay.Cluster.Transport;

/// <summary>
/// What a <see cref="ClusterServer"/> counts. The refusals' snake_case names are also the <c>code</c> of the error a
/// client gets. WARNING: only append — the names are in metrics and scripts.
/// </summary>
public enum ClusterServerEvent
{
    /// <summary>A connection whose TLS handshake failed or timed out (garbage, plain HTTP on the TLS port, a silent client).</summary>
    TlsHandshakeFailed,
    /// <summary>An authenticated route called without a client certificate (401).</summary>
    NoCertificate,
    /// <summary>A client certificate not issued by this cluster's CA, expired, or not a node's (401).</summary>
    ForeignCertificate,
    /// <summary>A client certificate of this CA naming another cluster (403).</summary>
    WrongCluster,
    /// <summary>A worker (or a demoted manager) calling a manager route (403).</summary>
    NotManager,
    /// <summary>A join with a malformed token, one of another cluster, or a wrong or rotated secret (403).</summary>
    BadToken,
    /// <summary>A body that is not the route's JSON, or a field that is missing or invalid (400).</summary>
    MalformedRequest,
    /// <summary>A body over <see cref="ClusterServerOptions.MaxRequestBodyBytes"/> (413).</summary>
    TooLarge,
    /// <summary>A node the cluster no longer has (removed) presenting its still-valid certificate (403).</summary>
    UnknownNode,
    /// <summary>A join the authority refused otherwise (a conflict, or the cluster unavailable).</summary>
    JoinRefused,
    /// <summary>Every join request received (before any check).</summary>
    JoinRequests,
    /// <summary>A worker joined (certificate issued).</summary>
    JoinedWorker,
    /// <summary>A manager joined (certificate issued).</summary>
    JoinedManager,
    /// <summary>A certificate renewed.</summary>
    Renewed,
    /// <summary>The root served on <c>GET /v1/cluster/ca</c>.</summary>
    CaServed,
    /// <summary>A request that failed on the server's side (500), logged.</summary>
    InternalError,
    /// <summary>A connection closed at once: its address already had <see cref="ClusterServerOptions.MaxConnectionsPerAddress"/> open.</summary>
    TooManyConnections,
}

/// <summary>The counters of a <see cref="ClusterServer"/>. Thread-safe; reads are a consistent-enough snapshot (each counter atomic).</summary>
public sealed class ClusterServerCounters
{
    private static readonly string[] Names = [.. Enum.GetValues<ClusterServerEvent>().Select(NameOf)];
    private readonly long[] _counts = new long[Names.Length];

    /// <summary>The snake_case name of <paramref name="e"/> (also the error code of a refusal).</summary>
    public static string NameOf(ClusterServerEvent e) => e switch
    {
        ClusterServerEvent.TlsHandshakeFailed => "tls_handshake_failed",
        ClusterServerEvent.NoCertificate => "no_certificate",
        ClusterServerEvent.ForeignCertificate => "foreign_certificate",
        ClusterServerEvent.WrongCluster => "wrong_cluster",
        ClusterServerEvent.NotManager => "not_manager",
        ClusterServerEvent.BadToken => "bad_token",
        ClusterServerEvent.MalformedRequest => "malformed_request",
        ClusterServerEvent.TooLarge => "too_large",
        ClusterServerEvent.UnknownNode => "unknown_node",
        ClusterServerEvent.JoinRefused => "join_refused",
        ClusterServerEvent.JoinRequests => "join_requests",
        ClusterServerEvent.JoinedWorker => "joined_worker",
        ClusterServerEvent.JoinedManager => "joined_manager",
        ClusterServerEvent.Renewed => "renewed",
        ClusterServerEvent.CaServed => "ca_served",
        ClusterServerEvent.InternalError => "internal_error",
        ClusterServerEvent.TooManyConnections => "too_many_connections",
        _ => throw new ArgumentOutOfRangeException(nameof(e)),
    };

    /// <summary>The count of <paramref name="e"/>.</summary>
    public long this[ClusterServerEvent e] => Interlocked.Read(ref _counts[(int)e]);

    /// <summary>Adds one to <paramref name="e"/>.</summary>
    public void Increment(ClusterServerEvent e) => Interlocked.Increment(ref _counts[(int)e]);

    /// <summary>All counters by name, in declaration order.</summary>
    public IReadOnlyDictionary<string, long> Snapshot()
    {
        var d = new Dictionary<string, long>(Names.Length, StringComparer.Ordinal);
        for (int i = 0; i < Names.Length; i++) d[Names[i]] = Interlocked.Read(ref _counts[i]);
        return d;
    }
}
