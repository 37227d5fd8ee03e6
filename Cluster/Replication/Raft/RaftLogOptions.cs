using System.Net;
using System.Net.Security;

namespace UserOverlay.Cluster.Replication.Raft;

/// <summary>
/// Settings of a <see cref="RaftLog"/> member. <see cref="Validate"/> names the first bad field; <see cref="RaftLog"/>
/// validates in its constructor, so a bad setting fails before any port or file is touched.
/// </summary>
public sealed record RaftLogOptions
{
    /// <summary>The default Raft port: the control channel's 2377 plus one.</summary>
    public const int DefaultPort = 2378;

    /// <summary>The default port of the proposal-forwarding channel: the Raft port plus one.</summary>
    public const int DefaultForwardPort = DefaultPort + 1;

    /// <summary>This member's node id (unique in the cluster; it names the member in <see cref="RaftLog.Members"/>).</summary>
    public required string MemberId { get; init; }

    /// <summary>Where the Raft transport listens (TCP).</summary>
    public required IPEndPoint ListenEndPoint { get; init; }

    /// <summary>
    /// The Raft address the other members reach this one at: the member's identity in the consensus, so it must stay
    /// the same across restarts. Null: <see cref="ListenEndPoint"/> (which must then not be a wildcard address).
    /// </summary>
    public IPEndPoint? AdvertisedEndPoint { get; init; }

    /// <summary>
    /// Where the forwarding channel listens (a follower hands a proposal or a membership change to the leader over it).
    /// Null: the listen address with port <see cref="ListenEndPoint"/>'s plus one.
    /// </summary>
    public IPEndPoint? ForwardListenEndPoint { get; init; }

    /// <summary>The forwarding address the other members reach this one at. Null: the advertised Raft address's host with the forwarding port.</summary>
    public IPEndPoint? ForwardAdvertisedEndPoint { get; init; }

    /// <summary>The member's directory (write-ahead log, snapshots, membership); created with mode 0700.</summary>
    public required string DataDirectory { get; init; }

    /// <summary>
    /// TLS server settings for both listeners (the node's certificate; <see cref="SslServerAuthenticationOptions.ClientCertificateRequired"/>
    /// and a validation callback that accepts only the cluster's CA: the members authenticate each other).
    /// </summary>
    public required SslServerAuthenticationOptions ServerTls { get; init; }

    /// <summary>
    /// TLS client settings for connections to the other members (the node's certificate as client certificate, and a
    /// validation callback that accepts only the cluster's CA). <see cref="SslClientAuthenticationOptions.TargetHost"/>
    /// is left to the caller (null is allowed: the callback decides).
    /// </summary>
    public required SslClientAuthenticationOptions ClientTls { get; init; }

    /// <summary>Lower bound of the randomized election timeout (a LAN default).</summary>
    public TimeSpan LowerElectionTimeout { get; init; } = TimeSpan.FromMilliseconds(150);

    /// <summary>Upper bound of the randomized election timeout.</summary>
    public TimeSpan UpperElectionTimeout { get; init; } = TimeSpan.FromMilliseconds(300);

    /// <summary>
    /// Timeout of one Raft request to a member, connecting and the TLS handshake included (DotNext bounds the whole
    /// exchange by it, and a leader that misses a majority's answers in one round steps down). DotNext's default, the
    /// lower election timeout, is too tight for a TLS handshake on a busy host — the leader then steps down and the
    /// elections that follow keep timing out — so the default here is 1 s; a large snapshot over a slow link wants more.
    /// </summary>
    public TimeSpan RequestTimeout { get; init; } = TimeSpan.FromSeconds(1);

    /// <summary>How long <see cref="RaftLog.ProposeAsync"/> and the membership changes wait for a leader to accept and apply.</summary>
    public TimeSpan ProposeTimeout { get; init; } = TimeSpan.FromSeconds(5);

    /// <summary>A snapshot is taken after this many applied entries (and the log before it is reclaimed).</summary>
    public int SnapshotEvery { get; init; } = 10_000;

    /// <summary>Rounds of log replication a joining member gets to catch up before it becomes a voter.</summary>
    public int WarmupRounds { get; init; } = 10;

    /// <summary>Largest command <see cref="RaftLog.ProposeAsync"/> accepts, in bytes (also the forwarding channel's frame limit).</summary>
    public int MaxCommandBytes { get; init; } = 4 * 1024 * 1024;

    /// <summary>Throws <see cref="ArgumentException"/> naming the first invalid field.</summary>
    public void Validate()
    {
        if (string.IsNullOrWhiteSpace(MemberId))
            throw new ArgumentException("MemberId: must be a non-empty node id", nameof(MemberId));
        if (MemberId.Length > RaftEntry.MaxIdLength)
            throw new ArgumentException($"MemberId: longer than {RaftEntry.MaxIdLength} characters", nameof(MemberId));
        if (ListenEndPoint is null)
            throw new ArgumentException("ListenEndPoint: required", nameof(ListenEndPoint));
        IPEndPoint advertised = AdvertisedEndPoint ?? ListenEndPoint;
        if (advertised.Address.Equals(IPAddress.Any) || advertised.Address.Equals(IPAddress.IPv6Any))
            throw new ArgumentException("AdvertisedEndPoint: required when ListenEndPoint is a wildcard address (the other members need an address to reach this one)", nameof(AdvertisedEndPoint));
        if (advertised.Port == 0)
            throw new ArgumentException("AdvertisedEndPoint: the port must not be 0", nameof(AdvertisedEndPoint));
        if (ForwardListenEndPoint is null && ListenEndPoint.Port is 0 or IPEndPoint.MaxPort)
            throw new ArgumentException("ForwardListenEndPoint: required when ListenEndPoint's port is 0 or 65535 (no port plus one)", nameof(ForwardListenEndPoint));
        if (string.IsNullOrWhiteSpace(DataDirectory))
            throw new ArgumentException("DataDirectory: required", nameof(DataDirectory));
        if (ServerTls is null || ServerTls.ServerCertificate is null && ServerTls.ServerCertificateContext is null && ServerTls.ServerCertificateSelectionCallback is null)
            throw new ArgumentException("ServerTls: needs the node's certificate", nameof(ServerTls));
        if (ClientTls is null)
            throw new ArgumentException("ClientTls: required", nameof(ClientTls));
        if (LowerElectionTimeout <= TimeSpan.Zero || LowerElectionTimeout.TotalMilliseconds > int.MaxValue)
            throw new ArgumentException("LowerElectionTimeout: must be positive", nameof(LowerElectionTimeout));
        if (UpperElectionTimeout <= LowerElectionTimeout || UpperElectionTimeout.TotalMilliseconds > int.MaxValue)
            throw new ArgumentException("UpperElectionTimeout: must be greater than LowerElectionTimeout", nameof(UpperElectionTimeout));
        if (RequestTimeout <= TimeSpan.Zero)
            throw new ArgumentException("RequestTimeout: must be positive", nameof(RequestTimeout));
        if (ProposeTimeout <= TimeSpan.Zero)
            throw new ArgumentException("ProposeTimeout: must be positive", nameof(ProposeTimeout));
        if (SnapshotEvery < 2)
            throw new ArgumentException("SnapshotEvery: must be at least 2", nameof(SnapshotEvery));
        if (WarmupRounds < 1)
            throw new ArgumentException("WarmupRounds: must be at least 1", nameof(WarmupRounds));
        if (MaxCommandBytes < 1 || MaxCommandBytes > 64 * 1024 * 1024)
            throw new ArgumentException("MaxCommandBytes: must be between 1 and 64 MiB", nameof(MaxCommandBytes));
    }

    internal IPEndPoint Advertised => AdvertisedEndPoint ?? ListenEndPoint;

    internal IPEndPoint ForwardListen => ForwardListenEndPoint ?? new IPEndPoint(ListenEndPoint.Address, ListenEndPoint.Port + 1);

    internal IPEndPoint ForwardAdvertised => ForwardAdvertisedEndPoint ?? new IPEndPoint(Advertised.Address, ForwardListen.Port);
}

/// <summary>One member of the consensus as this member sees it.</summary>
/// <param name="Id">The member's node id (its Raft address when the cluster has no record of its id).</param>
/// <param name="Address">Its Raft address ("IP:PORT").</param>
/// <param name="IsLeader">Whether this member takes it for the leader.</param>
/// <param name="Reachable">Whether it answered lately (always true for the local member); null when not known yet.</param>
/// <param name="IsLocal">Whether it is this member.</param>
public sealed record RaftMemberInfo(string Id, string Address, bool IsLeader, bool? Reachable, bool IsLocal);
