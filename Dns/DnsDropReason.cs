namespace UserOverlay.Dns;

/// <summary>
/// Why the DNS responder dropped a query or an upstream answer without answering it. Each drop increments one counter.
/// WARNING: only append — the names (<see cref="DnsCounters.Name"/>) are metric label values.
/// </summary>
public enum DnsDropReason
{
    /// <summary>The queue between the pipeline and the DNS worker was full (a flood): the frame was not taken.</summary>
    QueueFull,
    /// <summary>An IPv4 or UDP header that does not parse (short, options, a bad header checksum, lengths that do not add up).</summary>
    MalformedPacket,
    /// <summary>An IPv4 fragment: a query fits one datagram.</summary>
    Fragment,
    /// <summary>A DNS message shorter than its header, or not one query (a response, another opcode, not exactly one question).</summary>
    NotQuery,
    /// <summary>A DNS message the library refused (truncated records, a compression loop, a bad label).</summary>
    Unparsable,
    /// <summary>A UDP query larger than 512 bytes plus what EDNS allows (or larger than a frame).</summary>
    Oversized,
    /// <summary>No answer came from any upstream resolver in time (the asker got SERVFAIL).</summary>
    UpstreamTimeout,
    /// <summary>Too many queries were waiting for the upstream resolvers (the asker got SERVFAIL).</summary>
    UpstreamBusy,
    /// <summary>An upstream answer that matched no query waiting (late, spoofed or from another address).</summary>
    UpstreamUnexpected,
    /// <summary>The answer could not be delivered: the endpoint detached meanwhile, or its TAP refused the frame.</summary>
    NotDelivered,
    /// <summary>A TCP segment with a bad IPv4 or TCP checksum.</summary>
    TcpBadChecksum,
    /// <summary>A TCP segment of no open connection (it got a reset).</summary>
    TcpUnknownConnection,
    /// <summary>A TCP segment out of order, beyond the window or unexpected in the connection's state (the next expected sequence number is ACKed again).</summary>
    TcpOutOfWindow,
    /// <summary>A SYN while the network had its maximum of open TCP connections.</summary>
    TcpConnectionLimit,
    /// <summary>A TCP connection closed after seconds without a segment.</summary>
    TcpIdleTimeout,
}
