using System.Buffers.Binary;
using System.Security.Cryptography;
using UserOverlay.Router;

namespace UserOverlay.Dns;

// DNS over TCP at the gateway (RFC 7766; framing of RFC 1035 §4.2.2: each message after a 2-byte length), a minimal TCP
// of the DNS worker's own. Only the worker thread touches it: no lock.
//
//  - A SYN opens a connection (at most MaxConnectionsPerNetwork per network, else tcp_connection_limit): SYN-ACK with a
//    random initial sequence number and an MSS option (the network's MTU less 40, or the client's if smaller).
//  - Segments are taken in order only: one that starts elsewhere or runs beyond the window (the free part of a
//    ReceiveBuffer-byte buffer) is dropped (tcp_out_of_window) and the expected sequence number ACKed again.
//  - Each complete message is answered by the DnsAnswerer; names it would forward get SERVFAIL (the upstream path is
//    UDP's). The answer goes in segments of at most MSS, the last with PSH. Nothing is retransmitted: a client whose
//    answer is lost asks again. A length larger than the buffer resets the connection (oversized).
//  - FIN is answered with FIN-ACK; the connection is gone when that is ACKed, on RST, or after IdleTimeout without a
//    segment (tcp_idle_timeout). A segment of no connection gets a reset (tcp_unknown_connection).
//  - IPv4 and TCP checksums are verified (the router completes partial ones of an offloading TAP before the handler):
//    a bad one is dropped (tcp_bad_checksum).
internal sealed class DnsTcp(DnsResponder responder, DnsAnswerer answerer, FrameInjector inject, DnsCounters counters)
{
    public const int MaxConnectionsPerNetwork = 64;
    public const int ReceiveBuffer = 2 + 4096;
    public static readonly TimeSpan IdleTimeout = TimeSpan.FromSeconds(5);
    private const byte Fin = 0x01, Syn = 0x02, Rst = 0x04, Psh = 0x08, Ack = 0x10;
    private const int MaxAnswer = 65535;

    private enum State { SynReceived, Established, LastAck }

    private sealed class Connection(GatewayNetwork net, ulong clientMac, uint clientIp, ushort clientPort)
    {
        public readonly GatewayNetwork Net = net;
        public readonly ulong ClientMac = clientMac;
        public readonly uint ClientIp = clientIp;
        public readonly ushort ClientPort = clientPort;
        public readonly byte[] Buffer = new byte[ReceiveBuffer];
        public int Buffered;
        public uint Iss, SndNxt, RcvNxt;
        public int Mss;
        public State State;
        public long LastSeen;
    }

    private readonly Dictionary<(GatewayNetwork, uint, ushort), Connection> _connections = [];
    private readonly Dictionary<GatewayNetwork, int> _perNetwork = [];
    private readonly byte[] _answer = new byte[2 + MaxAnswer];
    private readonly byte[] _segment = new byte[DnsResponder.SlotSize];

    /// <summary>Open connections (for tests).</summary>
    public int Count => _connections.Count;

    /// <summary>Handles one TCP frame to the gateway's port 53 that <see cref="DnsFrames.Classify"/> accepted.</summary>
    public void OnSegment(GatewayNetwork net, ReadOnlySpan<byte> frame)
    {
        var ip = frame[DnsFrames.EthernetHeader..];
        if (ip[0] != 0x45) { counters.Drop(DnsDropReason.MalformedPacket); return; }
        int total = BinaryPrimitives.ReadUInt16BigEndian(ip[2..]);
        if (total < DnsFrames.Ipv4Header + DnsFrames.TcpHeader || total > ip.Length) { counters.Drop(DnsDropReason.MalformedPacket); return; }
        if ((BinaryPrimitives.ReadUInt16BigEndian(ip[6..]) & 0x3FFF) != 0) { counters.Drop(DnsDropReason.Fragment); return; }
        uint clientIp = BinaryPrimitives.ReadUInt32BigEndian(ip[12..]);
        var tcp = ip[DnsFrames.Ipv4Header..total];
        int dataOffset = (tcp[12] >> 4) * 4;
        if (dataOffset < DnsFrames.TcpHeader || dataOffset > tcp.Length) { counters.Drop(DnsDropReason.MalformedPacket); return; }
        if (DnsFrames.Fold(DnsFrames.Sum(ip[..DnsFrames.Ipv4Header])) != 0xFFFF
            || DnsFrames.Fold(DnsFrames.Sum(tcp, DnsFrames.PseudoHeader(clientIp, net.Address, DnsFrames.ProtoTcp, tcp.Length))) != 0xFFFF)
        {
            counters.Drop(DnsDropReason.TcpBadChecksum);
            return;
        }
        ushort port = BinaryPrimitives.ReadUInt16BigEndian(tcp);
        uint seq = BinaryPrimitives.ReadUInt32BigEndian(tcp[4..]), ack = BinaryPrimitives.ReadUInt32BigEndian(tcp[8..]);
        byte flags = tcp[13];
        var data = tcp[dataOffset..];
        long now = Environment.TickCount64;
        var key = (net, clientIp, port);
        _connections.TryGetValue(key, out var c);

        if ((flags & Rst) != 0)
        {
            if (c is not null && seq == c.RcvNxt) Close(key, c); // an in-window reset (RFC 5961: exactly the next one)
            return;
        }
        if ((flags & Syn) != 0 && (flags & Ack) == 0)
        {
            if (c is not null)
            {
                if (c.State == State.SynReceived && seq + 1 == c.RcvNxt) { c.LastSeen = now; SendSynAck(c); } // a retransmitted SYN
                else counters.Drop(DnsDropReason.TcpOutOfWindow);
                return;
            }
            _perNetwork.TryGetValue(net, out int open);
            if (open >= MaxConnectionsPerNetwork) { counters.Drop(DnsDropReason.TcpConnectionLimit); return; }
            c = new Connection(net, DnsFrames.ReadMac(frame[6..]), clientIp, port)
            {
                RcvNxt = seq + 1,
                Iss = (uint)RandomNumberGenerator.GetInt32(int.MaxValue) * 2u + 1u,
                Mss = Math.Min(ClientMss(tcp[DnsFrames.TcpHeader..dataOffset]), net.Mtu - DnsFrames.Ipv4Header - DnsFrames.TcpHeader),
                State = State.SynReceived,
                LastSeen = now,
            };
            _connections[key] = c;
            _perNetwork[net] = open + 1;
            Interlocked.Increment(ref counters.TcpConnectionsOpened);
            c.SndNxt = c.Iss + 1; // the SYN takes one sequence number
            SendSynAck(c);
            return;
        }
        if (c is null)
        {
            counters.Drop(DnsDropReason.TcpUnknownConnection);
            int n = DnsFrames.WriteTcpReset(frame, _segment, net.Mac.Value, net.Address);
            if (n > 0 && inject(net.Network, _segment.AsSpan(0, n))) Interlocked.Increment(ref counters.TcpResets);
            return;
        }
        if ((flags & Ack) == 0) { counters.Drop(DnsDropReason.TcpOutOfWindow); return; } // after the SYN every segment has ACK
        c.LastSeen = now;
        if (c.State == State.SynReceived && ack == c.SndNxt) c.State = State.Established;
        if (c.State == State.LastAck && ack == c.SndNxt) { Close(key, c); return; }
        if (c.State == State.SynReceived) { counters.Drop(DnsDropReason.TcpOutOfWindow); return; }

        bool fin = (flags & Fin) != 0;
        if (data.Length == 0 && !fin) return; // a pure ACK
        if (seq != c.RcvNxt || data.Length > ReceiveBuffer - c.Buffered || c.State != State.Established)
        {
            counters.Drop(DnsDropReason.TcpOutOfWindow);
            SendControl(c, Ack);
            return;
        }
        data.CopyTo(c.Buffer.AsSpan(c.Buffered));
        c.Buffered += data.Length;
        c.RcvNxt += (uint)data.Length;
        bool answered = false;
        while (c.Buffered >= 2)
        {
            int length = BinaryPrimitives.ReadUInt16BigEndian(c.Buffer);
            if (2 + length > ReceiveBuffer)
            {
                counters.Drop(DnsDropReason.Oversized);
                SendControl(c, Rst | Ack);
                Close(key, c);
                return;
            }
            if (c.Buffered < 2 + length) break;
            Answer(c, c.Buffer.AsSpan(2, length));
            answered = true;
            c.Buffer.AsSpan(2 + length, c.Buffered - 2 - length).CopyTo(c.Buffer);
            c.Buffered -= 2 + length;
        }
        if (fin)
        {
            c.RcvNxt++;
            SendControl(c, Fin | Ack);
            c.SndNxt++;
            c.State = State.LastAck;
        }
        else if (!answered || c.Buffered > 0) SendControl(c, Ack);
    }

    /// <summary>Drops connections idle for longer than <see cref="IdleTimeout"/>. The worker calls it about once a second.</summary>
    public void Sweep()
    {
        long limit = Environment.TickCount64 - (long)IdleTimeout.TotalMilliseconds;
        List<((GatewayNetwork, uint, ushort) Key, Connection C)>? idle = null;
        foreach (var (k, c) in _connections)
            if (c.LastSeen < limit) (idle ??= []).Add((k, c));
        if (idle is null) return;
        foreach (var (k, c) in idle)
        {
            counters.Drop(DnsDropReason.TcpIdleTimeout);
            Close(k, c);
        }
    }

    private void Close((GatewayNetwork, uint, ushort) key, Connection c)
    {
        if (!_connections.Remove(key)) return;
        int open = _perNetwork[c.Net] - 1;
        if (open == 0) _perNetwork.Remove(c.Net);
        else _perNetwork[c.Net] = open;
    }

    private void Answer(Connection c, ReadOnlySpan<byte> query)
    {
        Interlocked.Increment(ref counters.QueriesReceived);
        var ctx = responder.Context(c.Net);
        var body = _answer.AsSpan(2);
        var outcome = answerer.Answer(ctx, query, body, out int length, out var why, out bool nx, out bool truncated, tcp: true);
        switch (outcome)
        {
            case DnsOutcome.Drop:
                counters.Drop(why);
                if (!DnsAnswerer.LooksLikeQuery(query)) return;
                length = DnsAnswerer.ServFail(query, body); // a client waits on TCP: it hears of the failure
                break;
            case DnsOutcome.Forward: // the upstream path is UDP's: SERVFAIL, a client retries over UDP or elsewhere
                Interlocked.Increment(ref counters.TcpNotForwarded);
                length = DnsAnswerer.ServFail(query, body);
                break;
            default:
                Interlocked.Increment(ref nx ? ref counters.NameErrors : ref counters.AnsweredLocally);
                if (truncated) Interlocked.Increment(ref counters.Truncated);
                break;
        }
        BinaryPrimitives.WriteUInt16BigEndian(_answer, (ushort)length);
        int total = 2 + length;
        for (int sent = 0; sent < total;)
        {
            int n = Math.Min(c.Mss, total - sent);
            bool last = sent + n == total;
            Send(c, (byte)(Ack | (last ? Psh : 0)), _answer.AsSpan(sent, n), mss: false);
            c.SndNxt += (uint)n;
            sent += n;
        }
    }

    private void SendSynAck(Connection c) => Send(c, Syn | Ack, default, mss: true, seq: c.Iss);

    private void SendControl(Connection c, byte flags) => Send(c, flags, default, mss: false);

    private void Send(Connection c, int flags, ReadOnlySpan<byte> payload, bool mss, uint? seq = null)
    {
        int options = mss ? 4 : 0;
        int n = DnsFrames.WriteTcpSegment(_segment, c.Net.Mac.Value, c.Net.Address, c.ClientMac, c.ClientIp, c.ClientPort,
            seq ?? c.SndNxt, c.RcvNxt, (byte)flags, (ushort)(ReceiveBuffer - c.Buffered), mss ? (ushort)(c.Net.Mtu - 40) : (ushort)0, options, payload);
        if (!inject(c.Net.Network, _segment.AsSpan(0, n))) counters.Drop(DnsDropReason.NotDelivered);
    }

    // The client's MSS option (kind 2), or 536 (RFC 9293 §3.7.1) without one.
    private static int ClientMss(ReadOnlySpan<byte> options)
    {
        int i = 0;
        while (i < options.Length)
        {
            byte kind = options[i];
            if (kind == 0) break;
            if (kind == 1) { i++; continue; }
            if (i + 1 >= options.Length) break;
            int len = options[i + 1];
            if (len < 2 || i + len > options.Length) break;
            if (kind == 2 && len == 4) return Math.Max(64, (int)BinaryPrimitives.ReadUInt16BigEndian(options[(i + 2)..]));
            i += len;
        }
        return 536;
    }
}
