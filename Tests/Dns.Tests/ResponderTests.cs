using System.Net;
using System.Net.Sockets;
using ProtocolType = System.Net.Sockets.ProtocolType;
using ARSoft.Tools.Net.Dns;
using PacketDotNet;
using UserOverlay.Router;
using static UserOverlay.Dns.Tests.DnsHost;

namespace UserOverlay.Dns.Tests;

/// <summary>The responder at the gateway, on a router with real pipeline threads: names, aliases, round-robin, PTR, per network, forwarding.</summary>
public sealed class ResponderTests
{
    private static readonly EndpointOptions[] Endpoints =
    [
        Endpoint("blue", "c1", "198.18.0.11"), Endpoint("blue", "c2", "198.18.0.12"), Endpoint("blue", "c3", "198.18.0.13"),
        Endpoint("red", "r1", "198.18.1.11"),
    ];

    private static DnsHost WithNames()
    {
        var h = new DnsHost(Endpoints);
        h.Names.SetNames("blue", MacOf("198.18.0.12"), Ip("198.18.0.12"), ["web", "www"]);
        h.Names.SetNames("blue", MacOf("198.18.0.13"), Ip("198.18.0.13"), ["db", "www"]);
        h.Names.SetNames("red", MacOf("198.18.1.11"), Ip("198.18.1.11"), ["web"]);
        return h;
    }

    private static string[] Addresses(DnsMessage m) => [.. m.AnswerRecords.OfType<ARecord>().Select(a => a.Address.ToString())];

    [Fact]
    public void A_name_of_the_network_is_answered_with_its_address_authoritatively()
    {
        using var h = WithNames();
        var m = h.AskDns("c1", "198.18.0.11", Query(0x1234, "web"));
        Assert.Equal(ReturnCode.NoError, m.ReturnCode);
        Assert.True(m.IsAuthoritiveAnswer);
        Assert.Equal(["198.18.0.12"], Addresses(m));
        Assert.Equal("web.", m.Questions.Single().Name.ToString());
        // Case and a trailing dot do not matter; an alias answers the same way.
        Assert.Equal(["198.18.0.13"], Addresses(h.AskDns("c1", "198.18.0.11", Query(2, "DB."))));
        Assert.Equal(2, h.Responder.Counters.Answered);
    }

    [Fact]
    public void Several_endpoints_under_one_alias_are_all_answered_first_one_rotating()
    {
        using var h = WithNames();
        var firsts = new HashSet<string>();
        for (int i = 0; i < 4; i++)
        {
            var a = Addresses(h.AskDns("c1", "198.18.0.11", Query((ushort)(10 + i), "www")));
            Assert.Equal(["198.18.0.12", "198.18.0.13"], a.Order());
            firsts.Add(a[0]);
            // A change elsewhere on the network between two answers does not reset the turn.
            h.Names.SetNames("blue", MacOf("198.18.0.11"), Ip("198.18.0.11"), [$"other{i}"]);
        }
        Assert.Equal(2, firsts.Count);
    }

    [Fact]
    public void The_same_name_on_two_networks_answers_per_the_askers_network()
    {
        using var h = WithNames();
        Assert.Equal(["198.18.0.12"], Addresses(h.AskDns("c1", "198.18.0.11", Query(1, "web"))));
        Assert.Equal(["198.18.1.11"], Addresses(h.AskDns("r1", "198.18.1.11", Query(2, "web"), Red)));
        // db is blue's only: red (internal, so nothing is forwarded) answers NXDOMAIN.
        Assert.Equal(ReturnCode.NxDomain, h.AskDns("r1", "198.18.1.11", Query(3, "db"), Red).ReturnCode);
    }

    [Fact]
    public void Ptr_answers_an_endpoints_name_and_nxdomain_for_a_free_address_of_the_subnet()
    {
        using var h = WithNames();
        var m = h.AskDns("c1", "198.18.0.11", Query(7, "12.0.18.198.in-addr.arpa", RecordType.Ptr));
        Assert.Equal("web.", Assert.IsType<PtrRecord>(Assert.Single(m.AnswerRecords)).PointerDomainName.ToString());
        Assert.Equal(ReturnCode.NxDomain, h.AskDns("c1", "198.18.0.11", Query(8, "99.0.18.198.in-addr.arpa", RecordType.Ptr)).ReturnCode);
    }

    [Fact]
    public void Another_type_of_a_known_name_has_no_records_and_no_error()
    {
        using var h = WithNames();
        var m = h.AskDns("c1", "198.18.0.11", Query(9, "web", RecordType.Aaaa));
        Assert.Equal(ReturnCode.NoError, m.ReturnCode);
        Assert.Empty(m.AnswerRecords);
    }

    [Fact]
    public void Edns_gets_an_opt_record_and_a_large_answer_is_truncated_with_tc()
    {
        using var h = new DnsHost(Endpoints);
        for (int i = 0; i < 60; i++) h.Names.SetNames("blue", new MacAddress(0x0200_0000_1000UL + (ulong)i), Ip($"198.18.0.{100 + i}"), ["many"]);
        var classic = h.AskDns("c1", "198.18.0.11", Query(1, "many"));
        Assert.True(classic.IsTruncated);
        Assert.InRange(classic.AnswerRecords.Count, 1, 30); // 512 bytes hold 30 A records after the question
        var edns = h.AskDns("c1", "198.18.0.11", Query(2, "many", edns: true, ednsSize: 4096));
        Assert.True(edns.IsEDnsEnabled);
        Assert.False(edns.IsTruncated);
        Assert.Equal(60, edns.AnswerRecords.Count);
        Assert.Equal(1, h.Responder.Counters.TruncatedAnswers);
    }

    [Fact]
    public void A_detached_endpoints_name_is_gone_and_a_name_set_again_returns()
    {
        using var h = WithNames();
        Assert.True(h.Names.RemoveNames("blue", MacOf("198.18.0.12")));
        Assert.Equal(["198.18.0.13"], Addresses(h.AskDns("c1", "198.18.0.11", Query(1, "www"))));
        // blue forwards, but this host has no upstream: an unknown name is NXDOMAIN.
        Assert.Equal(ReturnCode.NxDomain, h.AskDns("c1", "198.18.0.11", Query(2, "web")).ReturnCode);
        h.Names.SetNames("blue", MacOf("198.18.0.12"), Ip("198.18.0.12"), ["web"]);
        Assert.Equal(["198.18.0.12"], Addresses(h.AskDns("c1", "198.18.0.11", Query(3, "web"))));
    }

    [Fact]
    public async Task Other_names_are_forwarded_upstream_and_the_answer_reaches_the_asker_with_its_id()
    {
        // The upstream: a UDP socket on loopback answering like a resolver (the integration tests use dnsmasq).
        using var upstream = new Socket(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp);
        upstream.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        var seen = new List<ushort>();
        var serve = Task.Run(() =>
        {
            var buf = new byte[2048];
            EndPoint from = new IPEndPoint(IPAddress.Any, 0);
            int n = upstream.ReceiveFrom(buf, ref from);
            var q = DnsMessage.Parse(new ArraySegment<byte>(buf, 0, n));
            lock (seen) seen.Add(q.TransactionID);
            // The answer: the query with QR and RA set and one A record for the test zone.
            var a = buf.AsSpan(0, n).ToArray().ToList();
            a[2] |= 0x80; a[3] = 0x80; a[7] = 1;
            a.AddRange([0xC0, 12, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 198, 18, 200, 7]);
            upstream.SendTo(a.ToArray(), from);
        }, TestContext.Current.CancellationToken);
        using var h = new DnsHost(Endpoints, new DnsResponderOptions { Upstreams = [(IPEndPoint)upstream.LocalEndPoint!] });
        foreach (var n in new[] { Blue, Red }) h.Responder.SetNetwork(n.Name, n.Subnet.Network, n.Subnet.Length, n.Internal);
        var m = h.AskDns("c1", "198.18.0.11", Query(0x4242, "host.example.test"));
        Assert.True(await Task.WhenAny(serve, Task.Delay(Wait, TestContext.Current.CancellationToken)) == serve);
        Assert.Equal(["198.18.200.7"], Addresses(m));
        Assert.Equal(1, h.Responder.Counters.ForwardedQueries);
        Assert.Equal(1, h.Responder.Counters.UpstreamAnswered);
        Assert.Equal(0, h.Responder.PendingUpstream);

        // An internal network never forwards.
        Assert.Equal(ReturnCode.NxDomain, h.AskDns("r1", "198.18.1.11", Query(5, "host.example.test"), Red).ReturnCode);
        Assert.Equal(1, h.Responder.Counters.ForwardedQueries);
    }

    [Fact]
    public void An_upstream_that_does_not_answer_gets_the_asker_servfail_and_counts_a_timeout()
    {
        using var silent = new Socket(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp);
        silent.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        using var h = new DnsHost(Endpoints, new DnsResponderOptions { Upstreams = [(IPEndPoint)silent.LocalEndPoint!], UpstreamTimeout = TimeSpan.FromMilliseconds(300) });
        var m = h.AskDns("c1", "198.18.0.11", Query(77, "nowhere.example.test"));
        Assert.Equal(ReturnCode.ServerFailure, m.ReturnCode);
        Assert.Equal(1, h.Responder.Counters.Dropped(DnsDropReason.UpstreamTimeout));
    }
}
