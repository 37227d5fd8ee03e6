using System.Buffers.Binary;
using ARSoft.Tools.Net.Dns;
using PacketDotNet;
using UserOverlay.Router;
using static UserOverlay.Dns.Tests.DnsHost;

namespace UserOverlay.Dns.Tests;

/// <summary>DNS over TCP at the gateway, frame by frame: handshake, a query and its answer, FIN, reset, hostile segments.</summary>
public sealed class TcpTests
{
    private const byte Fin = 0x01, Syn = 0x02, Rst = 0x04, Psh = 0x08, Ack = 0x10;
    private const string Client = "198.18.0.11";
    private static readonly EndpointOptions[] Endpoints = [Endpoint("blue", "c1", Client), Endpoint("blue", "c2", "198.18.0.12")];

    private static DnsHost Host()
    {
        var h = new DnsHost(Endpoints);
        h.Names.SetNames("blue", MacOf("198.18.0.12"), Ip("198.18.0.12"), ["web"]);
        return h;
    }

    /// <summary>An Ethernet/IPv4/TCP frame from the client to the gateway's port 53, written by hand (so it can be damaged), an MSS option when <paramref name="mss"/> is set.</summary>
    private static byte[] Segment(ushort port, uint seq, uint ack, byte flags, byte[]? payload = null, ushort mss = 0, bool badChecksum = false)
    {
        payload ??= [];
        int opt = mss > 0 ? 4 : 0;
        int tcpLen = 20 + opt + payload.Length;
        var f = new byte[14 + 20 + tcpLen];
        WriteMac(f.AsSpan(6), MacOf(Client).Value);
        WriteMac(f, BlueGatewayMac.Value);
        f[12] = 0x08;
        var ip = f.AsSpan(14);
        ip[0] = 0x45;
        BinaryPrimitives.WriteUInt16BigEndian(ip[2..], (ushort)(20 + tcpLen));
        ip[6] = 0x40; ip[8] = 64; ip[9] = 6;
        BinaryPrimitives.WriteUInt32BigEndian(ip[12..], Ip(Client));
        BinaryPrimitives.WriteUInt32BigEndian(ip[16..], Ip("198.18.0.1"));
        BinaryPrimitives.WriteUInt16BigEndian(ip[10..], Complement(ip[..20], 0));
        var t = ip[20..];
        BinaryPrimitives.WriteUInt16BigEndian(t, port);
        BinaryPrimitives.WriteUInt16BigEndian(t[2..], 53);
        BinaryPrimitives.WriteUInt32BigEndian(t[4..], seq);
        BinaryPrimitives.WriteUInt32BigEndian(t[8..], ack);
        t[12] = (byte)((20 + opt) / 4 << 4);
        t[13] = flags;
        BinaryPrimitives.WriteUInt16BigEndian(t[14..], 64240);
        if (mss > 0) { t[20] = 2; t[21] = 4; BinaryPrimitives.WriteUInt16BigEndian(t[22..], mss); }
        payload.CopyTo(t[(20 + opt)..]);
        ulong pseudo = (Ip(Client) >> 16) + (Ip(Client) & 0xFFFF) + (Ip("198.18.0.1") >> 16) + (Ip("198.18.0.1") & 0xFFFF) + 6 + (ulong)tcpLen;
        BinaryPrimitives.WriteUInt16BigEndian(t[16..], (ushort)(Complement(t, pseudo) ^ (badChecksum ? 0x1234 : 0)));
        return f;
    }

    private static void WriteMac(Span<byte> b, ulong mac)
    {
        BinaryPrimitives.WriteUInt16BigEndian(b, (ushort)(mac >> 32));
        BinaryPrimitives.WriteUInt32BigEndian(b[2..], (uint)mac);
    }

    private static ushort Complement(ReadOnlySpan<byte> d, ulong sum)
    {
        for (int i = 0; i + 1 < d.Length; i += 2) sum += BinaryPrimitives.ReadUInt16BigEndian(d[i..]);
        if (d.Length % 2 == 1) sum += (ulong)d[^1] << 8;
        while (sum > 0xFFFF) sum = (sum & 0xFFFF) + (sum >> 16);
        return (ushort)~sum;
    }

    private static byte[] Framed(byte[] message) => [(byte)(message.Length >> 8), (byte)message.Length, .. message];

    /// <summary>Takes the next segment the gateway sent the client, checked: addresses, ports, both checksums (PacketDotNet's).</summary>
    private static TcpPacket Next(DnsHost h, ushort port)
    {
        var frame = h.Tap("c1").WaitTake(Wait);
        Assert.NotNull(frame);
        var ip = Packet.ParsePacket(LinkLayers.Ethernet, frame).Extract<IPv4Packet>();
        Assert.True(ip.ValidIPChecksum, "IPv4 header checksum");
        Assert.Equal("198.18.0.1", ip.SourceAddress.ToString());
        Assert.Equal(Client, ip.DestinationAddress.ToString());
        var tcp = ip.Extract<TcpPacket>();
        Assert.True(tcp.ValidTcpChecksum, "TCP checksum");
        Assert.Equal(53, tcp.SourcePort);
        Assert.Equal(port, tcp.DestinationPort);
        return tcp;
    }

    private static void Quiet(DnsHost h) => Assert.Null(h.Tap("c1").WaitTake(DnsHost.Quiet));

    /// <summary>SYN → SYN-ACK → ACK; returns the gateway's next sequence number.</summary>
    private static uint Open(DnsHost h, ushort port, uint clientIsn, ushort mss = 1460)
    {
        h.Tap("c1").Inject(Segment(port, clientIsn, 0, Syn, mss: mss));
        var synAck = Next(h, port);
        Assert.True(synAck.Synchronize && synAck.Acknowledgment && !synAck.Reset);
        Assert.Equal(clientIsn + 1, synAck.AcknowledgmentNumber);
        h.Tap("c1").Inject(Segment(port, clientIsn + 1, synAck.SequenceNumber + 1, Ack));
        return synAck.SequenceNumber + 1;
    }

    [Fact]
    public void A_query_over_tcp_is_answered_with_the_length_prefixed_answer_and_fin_closes()
    {
        using var h = Host();
        const ushort port = 40100;
        h.Tap("c1").Inject(Segment(port, 5000, 0, Syn, mss: 1460));
        var synAck = Next(h, port);
        Assert.True(synAck.Synchronize && synAck.Acknowledgment);
        Assert.Equal(5001u, synAck.AcknowledgmentNumber);
        Assert.Equal(24, synAck.DataOffset * 4); // the MSS option: the overlay MTU (1450) less 40
        Assert.Equal([2, 4], synAck.Bytes[20..22]);
        Assert.Equal(1450 - 40, BinaryPrimitives.ReadUInt16BigEndian(synAck.Bytes.AsSpan(22)));
        uint ours = synAck.SequenceNumber + 1;
        h.Tap("c1").Inject(Segment(port, 5001, ours, Ack));

        // The query in two segments: the length first, then the message (a message need not come in one segment).
        byte[] q = Framed(Query(0x7777, "web"));
        h.Tap("c1").Inject(Segment(port, 5001, ours, Ack | Psh, q[..2]));
        var ack = Next(h, port);
        Assert.True(ack.Acknowledgment && ack.PayloadData.Length == 0);
        Assert.Equal(5003u, ack.AcknowledgmentNumber);
        h.Tap("c1").Inject(Segment(port, 5003, ours, Ack | Psh, q[2..]));
        var answer = Next(h, port);
        Assert.True(answer.Push && answer.Acknowledgment);
        Assert.Equal(ours, answer.SequenceNumber);
        Assert.Equal(5001u + (uint)q.Length, answer.AcknowledgmentNumber);
        byte[] data = answer.PayloadData;
        Assert.Equal(data.Length - 2, BinaryPrimitives.ReadUInt16BigEndian(data));
        var m = DnsMessage.Parse(new ArraySegment<byte>(data, 2, data.Length - 2));
        Assert.Equal(0x7777, m.TransactionID);
        Assert.Equal(["198.18.0.12"], m.AnswerRecords.OfType<ARecord>().Select(a => a.Address.ToString()));
        ours += (uint)data.Length;

        // A name the network does not have, on a host without upstreams: NXDOMAIN, as over UDP.
        byte[] q2 = Framed(Query(0x7778, "elsewhere.example.test"));
        uint cseq = 5001u + (uint)q.Length;
        h.Tap("c1").Inject(Segment(port, cseq, ours, Ack | Psh, q2));
        var a2 = Next(h, port);
        var m2 = DnsMessage.Parse(new ArraySegment<byte>(a2.PayloadData, 2, a2.PayloadData.Length - 2));
        Assert.Equal(0x7778, m2.TransactionID);
        Assert.Equal(ReturnCode.NxDomain, m2.ReturnCode); // this host has no upstream: blue does not forward, NXDOMAIN
        ours += (uint)a2.PayloadData.Length;
        cseq += (uint)q2.Length;

        // FIN → FIN-ACK; the ACK of it closes the connection.
        h.Tap("c1").Inject(Segment(port, cseq, ours, Fin | Ack));
        var fin = Next(h, port);
        Assert.True(fin.Finished && fin.Acknowledgment);
        Assert.Equal(cseq + 1, fin.AcknowledgmentNumber);
        Assert.Equal(ours, fin.SequenceNumber);
        Assert.Equal(1, h.Responder.TcpConnectionCount);
        h.Tap("c1").Inject(Segment(port, cseq + 1, ours + 1, Ack));
        Assert.True(SpinWait.SpinUntil(() => h.Responder.TcpConnectionCount == 0, Wait));
        Assert.Equal(1, h.Responder.Counters.TcpConnections);
        Assert.Equal(2, h.Responder.Counters.Queries);
    }

    [Fact]
    public void A_name_that_would_be_forwarded_gets_servfail_over_tcp()
    {
        using var upstream = new System.Net.Sockets.Socket(System.Net.Sockets.AddressFamily.InterNetwork, System.Net.Sockets.SocketType.Dgram, System.Net.Sockets.ProtocolType.Udp);
        upstream.Bind(new System.Net.IPEndPoint(System.Net.IPAddress.Loopback, 0));
        using var h = new DnsHost(Endpoints, new DnsResponderOptions { Upstreams = [(System.Net.IPEndPoint)upstream.LocalEndPoint!] });
        const ushort port = 40103;
        uint ours = Open(h, port, 200);
        h.Tap("c1").Inject(Segment(port, 201, ours, Ack | Psh, Framed(Query(0x5151, "host.example.test"))));
        var a = Next(h, port);
        var m = DnsMessage.Parse(new ArraySegment<byte>(a.PayloadData, 2, a.PayloadData.Length - 2));
        Assert.Equal(0x5151, m.TransactionID);
        Assert.Equal(ReturnCode.ServerFailure, m.ReturnCode);
        Assert.Equal(1, h.Responder.Counters.TcpServFailNotForwarded);
        Assert.Equal(0, h.Responder.Counters.ForwardedQueries);
    }

    [Fact]
    public void An_answer_larger_than_the_mss_goes_in_segments_of_at_most_the_mss()
    {
        using var h = Host();
        for (int i = 0; i < 60; i++) h.Names.SetNames("blue", MacOf($"198.18.0.{100 + i}"), Ip($"198.18.0.{100 + i}"), ["many"]);
        const ushort port = 40101;
        uint ours = Open(h, port, 9000, mss: 200);
        byte[] q = Framed(Query(9, "many"));
        h.Tap("c1").Inject(Segment(port, 9001, ours, Ack | Psh, q));
        var data = new List<byte>();
        TcpPacket s;
        do
        {
            s = Next(h, port);
            Assert.True(s.PayloadData.Length is > 0 and <= 200);
            Assert.Equal(ours + (uint)data.Count, s.SequenceNumber);
            data.AddRange(s.PayloadData);
        } while (!s.Push);
        Assert.Equal(data.Count - 2, BinaryPrimitives.ReadUInt16BigEndian(data.ToArray()));
        var m = DnsMessage.Parse(new ArraySegment<byte>([.. data], 2, data.Count - 2));
        Assert.Equal(60, m.AnswerRecords.Count); // all of them: over TCP nothing is truncated
        Assert.False(m.IsTruncated);
    }

    [Fact]
    public void Hostile_segments_are_dropped_and_counted_and_the_connection_goes_on()
    {
        using var h = Host();
        var c = h.Responder.Counters;
        const ushort port = 40102;

        // A segment of no connection: a reset, counted.
        h.Tap("c1").Inject(Segment(40999, 1, 1, Ack | Psh, Framed(Query(1, "web"))));
        Assert.True(Next(h, 40999).Reset);
        Assert.Equal(1, c.Dropped(DnsDropReason.TcpUnknownConnection));

        // A SYN with a bad checksum: nothing.
        h.Tap("c1").Inject(Segment(port, 100, 0, Syn, mss: 1460, badChecksum: true));
        Quiet(h);
        Assert.Equal(1, c.Dropped(DnsDropReason.TcpBadChecksum));

        uint ours = Open(h, port, 100);
        // Out of order (a gap): dropped, the expected sequence number ACKed again.
        byte[] q = Framed(Query(2, "web"));
        h.Tap("c1").Inject(Segment(port, 150, ours, Ack | Psh, q));
        var reAck = Next(h, port);
        Assert.Equal(101u, reAck.AcknowledgmentNumber);
        Assert.Empty(reAck.PayloadData);
        Assert.Equal(1, c.Dropped(DnsDropReason.TcpOutOfWindow));
        // The connection still answers.
        h.Tap("c1").Inject(Segment(port, 101, ours, Ack | Psh, q));
        var answer = Next(h, port);
        Assert.Equal(2, DnsMessage.Parse(new ArraySegment<byte>(answer.PayloadData, 2, answer.PayloadData.Length - 2)).TransactionID);

        // A length larger than any query taken: oversized, the connection reset and gone.
        uint cseq = 101u + (uint)q.Length;
        h.Tap("c1").Inject(Segment(port, cseq, ours + (uint)answer.PayloadData.Length, Ack, [0xFF, 0xFF]));
        Assert.True(Next(h, port).Reset);
        Assert.Equal(1, c.Dropped(DnsDropReason.Oversized));
        Assert.True(SpinWait.SpinUntil(() => h.Responder.TcpConnectionCount == 0, Wait));

        // Beyond the window (the buffer of a message not complete yet): dropped, the expected sequence number ACKed again.
        uint o2 = Open(h, (ushort)(port + 2), 3000);
        h.Tap("c1").Inject(Segment((ushort)(port + 2), 3001, o2, Ack, [0x0F, 0xA0, .. new byte[1400]])); // a length of 4000
        Assert.Equal(3001u + 1402, Next(h, (ushort)(port + 2)).AcknowledgmentNumber);
        h.Tap("c1").Inject(Segment((ushort)(port + 2), 3001 + 1402, o2, Ack, new byte[1400]));
        Assert.Equal(3001u + 2802, Next(h, (ushort)(port + 2)).AcknowledgmentNumber);
        h.Tap("c1").Inject(Segment((ushort)(port + 2), 3001 + 2802, o2, Ack, new byte[1400]));
        Assert.Equal(3001u + 2802, Next(h, (ushort)(port + 2)).AcknowledgmentNumber);
        Assert.Equal(2, c.Dropped(DnsDropReason.TcpOutOfWindow));

        // A reset from the client closes its connection.
        ours = Open(h, (ushort)(port + 1), 7000);
        Assert.Equal(2, h.Responder.TcpConnectionCount);
        h.Tap("c1").Inject(Segment((ushort)(port + 1), 7001, ours, Rst));
        Assert.True(SpinWait.SpinUntil(() => h.Responder.TcpConnectionCount == 1, Wait));
    }

    [Fact]
    public void Connections_beyond_the_limit_are_refused_and_idle_ones_time_out()
    {
        using var h = Host();
        var c = h.Responder.Counters;
        for (int i = 0; i < DnsTcp.MaxConnectionsPerNetwork; i++)
        {
            h.Tap("c1").Inject(Segment((ushort)(41000 + i), 1, 0, Syn));
            Assert.True(Next(h, (ushort)(41000 + i)).Synchronize);
        }
        h.Tap("c1").Inject(Segment(42000, 1, 0, Syn));
        Quiet(h);
        Assert.Equal(1, c.Dropped(DnsDropReason.TcpConnectionLimit));
        Assert.Equal(DnsTcp.MaxConnectionsPerNetwork, h.Responder.TcpConnectionCount);
        // Nobody completes the handshake: after the idle timeout all are gone, counted, and a new SYN is answered.
        Assert.True(SpinWait.SpinUntil(() => h.Responder.TcpConnectionCount == 0, DnsTcp.IdleTimeout + Wait));
        Assert.Equal(DnsTcp.MaxConnectionsPerNetwork, c.Dropped(DnsDropReason.TcpIdleTimeout));
        h.Tap("c1").Inject(Segment(42000, 1, 0, Syn));
        Assert.True(Next(h, 42000).Synchronize);
    }
}
