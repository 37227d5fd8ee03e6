using Prometheus;
using UserOverlay.Dns;

namespace UserOverlay.Cli.Daemon;

/// <summary>
/// The DNS responder's Prometheus metrics (all networks together), copied from its counters when scraped:
/// <list type="bullet">
/// <item><c>useroverlay_dns_queries_total{result}</c>: queries taken from the pipeline by what became of them —
/// answered (from the name table), nxdomain, forwarded (sent upstream), upstream_answered, truncated (TC=1),
/// tcp_reset (a TCP segment to port 53 refused)</item>
/// <item><c>useroverlay_dns_drops_total{reason}</c>: queue_full, malformed_packet, fragment, not_query, unparsable,
/// oversized, upstream_timeout, upstream_busy, upstream_unexpected, not_delivered (<see cref="DnsDropReason"/>)</item>
/// </list>
/// </summary>
internal static class DnsMetrics
{
    public static void Register(MetricFactory f, CollectorRegistry registry, DnsService dns)
    {
        var queries = f.CreateCounter("useroverlay_dns_queries_total", "DNS queries at the gateways by result (answered, nxdomain, forwarded, upstream_answered, truncated, tcp_reset, tcp_connection, tcp_servfail_not_forwarded).", "result");
        var drops = f.CreateCounter("useroverlay_dns_drops_total", "DNS queries and upstream answers dropped by reason.", "reason");
        registry.AddBeforeCollectCallback(() =>
        {
            if (dns.Responder?.Counters is not { } c) return;
            queries.WithLabels("answered").IncTo(c.Answered);
            queries.WithLabels("nxdomain").IncTo(c.NxDomain);
            queries.WithLabels("forwarded").IncTo(c.ForwardedQueries);
            queries.WithLabels("upstream_answered").IncTo(c.UpstreamAnswered);
            queries.WithLabels("truncated").IncTo(c.TruncatedAnswers);
            queries.WithLabels("tcp_reset").IncTo(c.TcpResetsSent);
            queries.WithLabels("tcp_connection").IncTo(c.TcpConnections);
            queries.WithLabels("tcp_servfail_not_forwarded").IncTo(c.TcpServFailNotForwarded);
            foreach (var (reason, v) in c.Drops) drops.WithLabels(reason).IncTo(v);
        });
    }
}
