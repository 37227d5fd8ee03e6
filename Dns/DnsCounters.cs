namespace UserOverlay.Dns;

/// <summary>The DNS responder's counters (all networks together). Thread-safe: incremented with Interlocked.</summary>
public sealed class DnsCounters
{
    private readonly long[] _drops = new long[Enum.GetValues<DnsDropReason>().Length];
    internal long QueriesReceived, AnsweredLocally, NameErrors, Forwarded, UpstreamAnswers, Truncated, TcpResets, TcpConnectionsOpened, TcpNotForwarded;

    /// <summary>Queries taken from the pipeline (UDP datagrams to a gateway's port 53 that were queued, and messages over TCP).</summary>
    public long Queries => Interlocked.Read(ref QueriesReceived);
    /// <summary>Queries answered from the name table (names, aliases, PTR; NOERROR with or without records).</summary>
    public long Answered => Interlocked.Read(ref AnsweredLocally);
    /// <summary>Queries answered NXDOMAIN by the responder itself (an unknown name on an internal network or without upstreams, an unknown address of the subnet).</summary>
    public long NxDomain => Interlocked.Read(ref NameErrors);
    /// <summary>Queries sent to an upstream resolver.</summary>
    public long ForwardedQueries => Interlocked.Read(ref Forwarded);
    /// <summary>Upstream answers delivered to the asker.</summary>
    public long UpstreamAnswered => Interlocked.Read(ref UpstreamAnswers);
    /// <summary>Answers that did not fit a UDP datagram and went out with TC=1.</summary>
    public long TruncatedAnswers => Interlocked.Read(ref Truncated);
    /// <summary>TCP segments to port 53 answered with a reset (segments of no open connection).</summary>
    public long TcpResetsSent => Interlocked.Read(ref TcpResets);
    /// <summary>TCP connections to port 53 accepted (SYN answered).</summary>
    public long TcpConnections => Interlocked.Read(ref TcpConnectionsOpened);
    /// <summary>Queries over TCP for names that would be forwarded, answered SERVFAIL (forwarding is over UDP only).</summary>
    public long TcpServFailNotForwarded => Interlocked.Read(ref TcpNotForwarded);

    /// <summary>Drops of <paramref name="reason"/>.</summary>
    public long Dropped(DnsDropReason reason) => Interlocked.Read(ref _drops[(int)reason]);

    /// <summary>Every drop counter by its metric name.</summary>
    public IReadOnlyDictionary<string, long> Drops => Enum.GetValues<DnsDropReason>().ToDictionary(Name, Dropped, StringComparer.Ordinal);

    internal void Drop(DnsDropReason reason) => Interlocked.Increment(ref _drops[(int)reason]);

    /// <summary>The metric label of a reason: snake case (<c>queue_full</c>, <c>upstream_timeout</c>…).</summary>
    public static string Name(DnsDropReason reason) => reason switch
    {
        DnsDropReason.QueueFull => "queue_full",
        DnsDropReason.MalformedPacket => "malformed_packet",
        DnsDropReason.Fragment => "fragment",
        DnsDropReason.NotQuery => "not_query",
        DnsDropReason.Unparsable => "unparsable",
        DnsDropReason.Oversized => "oversized",
        DnsDropReason.UpstreamTimeout => "upstream_timeout",
        DnsDropReason.UpstreamBusy => "upstream_busy",
        DnsDropReason.UpstreamUnexpected => "upstream_unexpected",
        DnsDropReason.NotDelivered => "not_delivered",
        DnsDropReason.TcpBadChecksum => "tcp_bad_checksum",
        DnsDropReason.TcpUnknownConnection => "tcp_unknown_connection",
        DnsDropReason.TcpOutOfWindow => "tcp_out_of_window",
        DnsDropReason.TcpConnectionLimit => "tcp_connection_limit",
        DnsDropReason.TcpIdleTimeout => "tcp_idle_timeout",
        _ => reason.ToString(),
    };
}
