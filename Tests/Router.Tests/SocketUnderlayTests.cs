using System.Net;
using UserOverlay.Router.Underlay;
using UserOverlay.Testing.Common;

namespace UserOverlay.Router.Tests;

/// <summary>The underlay edge against the kernel: the recvmmsg/sendmmsg socket, UDP GSO and GRO, and bind errors.</summary>
[Collection(LinuxDeviceCollection.Name)]
public class SocketUnderlayTests
{
    [Fact]
    public void Udp_underlay_batches_datagrams_and_reports_sources()
    {
        Requires.Root();
        using var net = new TestNetwork("udp");
        string ns = net.AddHost("h1", "192.0.2.1/24");
        var local = new VtepEndpoint(InMemoryHosts.Ip("192.0.2.1"), 4789);
        using var u = Netns.Namespaces.RunIn(ns, () => UdpUnderlay.Open(local, 64));

        // A second socket in the same namespace sends 100 datagrams of different sizes to the VTEP.
        using var sender = NetnsSockets.Udp(ns, new IPEndPoint(IPAddress.Parse("192.0.2.1"), 40000));
        for (int i = 0; i < 100; i++) sender.SendTo(new byte[100 + i], new IPEndPoint(IPAddress.Parse("192.0.2.1"), 4789));
        var dgrams = new UnderlayDatagram[64];
        for (int i = 0; i < dgrams.Length; i++) dgrams[i].Buffer = new PacketBuffer();
        var lengths = new List<int>();
        var deadline = DateTime.UtcNow.AddSeconds(5);
        while (lengths.Count < 100 && DateTime.UtcNow < deadline)
        {
            int n = u.Receive(dgrams, 56); // non-blocking: 0 when nothing is queued
            Assert.InRange(n, 0, 64);
            for (int i = 0; i < n; i++)
            {
                Assert.Equal("192.0.2.1:40000", dgrams[i].Peer.ToString());
                Assert.Equal(56, dgrams[i].Offset);
                lengths.Add(dgrams[i].Length);
            }
        }
        Assert.Equal(Enumerable.Range(100, 100), lengths);

        // sendmmsg: 150 datagrams (more than one receive batch; within the receiver's socket buffer) from the VTEP to the second socket.
        var outgoing = new UnderlayDatagram[150];
        var buf = new PacketBuffer();
        for (int i = 0; i < outgoing.Length; i++)
            outgoing[i] = new UnderlayDatagram { Buffer = buf, Offset = 64, Length = 10 + i % 50, Peer = new VtepEndpoint(InMemoryHosts.Ip("192.0.2.1"), 40000) };
        Assert.Equal(0, u.Send(outgoing));
        var rx = new byte[2048];
        sender.ReceiveTimeout = 2000;
        for (int i = 0; i < outgoing.Length; i++)
        {
            EndPoint from = new IPEndPoint(IPAddress.Any, 0);
            Assert.Equal(10 + i % 50, sender.ReceiveFrom(rx, ref from));
            Assert.Equal("192.0.2.1:4789", from.ToString());
        }
        Assert.Equal(0, u.Receive(dgrams, 56)); // nothing queued: returns at once
    }

    [Fact]
    public void Udp_underlay_receives_into_whichever_buffers_and_offset_each_call_passes()
    {
        // Receive rewrites its message vector only where the caller's buffers or offset changed since the last call
        // (so an idle batch is not touched per datagram); new buffers, a new offset, and slots the kernel filled last
        // time (their address lengths and flags) must all be taken up.
        Requires.Root();
        using var net = new TestNetwork("udpb");
        string ns = net.AddHost("h1", "192.0.2.1/24");
        var local = new VtepEndpoint(InMemoryHosts.Ip("192.0.2.1"), 4789);
        using var u = Netns.Namespaces.RunIn(ns, () => UdpUnderlay.Open(local, 8));
        using var sender = NetnsSockets.Udp(ns, new IPEndPoint(IPAddress.Parse("192.0.2.1"), 40001));
        var to = new IPEndPoint(IPAddress.Parse("192.0.2.1"), 4789);

        UnderlayDatagram[] Batch() => Enumerable.Range(0, 8).Select(_ => new UnderlayDatagram { Buffer = new PacketBuffer() }).ToArray();
        List<(byte[] Data, UnderlayDatagram D)> ReceiveAll(UnderlayDatagram[] batch, int offset, int expected)
        {
            var got = new List<(byte[], UnderlayDatagram)>();
            var deadline = DateTime.UtcNow.AddSeconds(5);
            while (got.Count < expected && DateTime.UtcNow < deadline)
            {
                int n = u.Receive(batch, offset);
                for (int i = 0; i < n; i++)
                {
                    Assert.Equal(offset, batch[i].Offset);
                    Assert.Equal("192.0.2.1:40001", batch[i].Peer.ToString());
                    got.Add((batch[i].Buffer.Span.Slice(offset, batch[i].Length).ToArray(), batch[i]));
                }
            }
            return got;
        }

        var first = Batch();
        byte round = 0;
        foreach (var (batch, offset, count) in new[] { (first, 56, 6), (first, 56, 2), (Batch(), 56, 8), (first, 8, 5), (Batch(), 100, 3) })
        {
            round++;
            for (int i = 0; i < count; i++) sender.SendTo(Enumerable.Repeat((byte)(round * 16 + i), 20 + i).ToArray(), to);
            var got = ReceiveAll(batch, offset, count);
            Assert.Equal(count, got.Count);
            for (int i = 0; i < count; i++)
            {
                Assert.Equal(Enumerable.Repeat((byte)(round * 16 + i), 20 + i), got[i].Data);
                Assert.Contains(batch, d => ReferenceEquals(d.Buffer, got[i].D.Buffer)); // landed in a buffer of this call
            }
        }
    }

    [Fact]
    public void Udp_gso_sends_are_cut_by_the_kernel_and_gro_receives_come_back_whole()
    {
        using var net = new TestNetwork("gso");
        string ns = net.AddHost("h1", "192.0.2.1/24");
        using var a = Netns.Namespaces.RunIn(ns, () => UdpUnderlay.Open(new VtepEndpoint(InMemoryHosts.Ip("192.0.2.1"), 4789), 64));
        using var b = Netns.Namespaces.RunIn(ns, () => UdpUnderlay.Open(new VtepEndpoint(InMemoryHosts.Ip("192.0.2.1"), 4790), 64));
        Assert.True(a.SupportsSegmentation);
        // 11 datagrams in one send: ten of 1000 bytes and one of 500, each starting with its index.
        var buf = new PacketBuffer(Constants.GsoBufferSize);
        for (int i = 0; i < 11; i++) buf.Span.Slice(64 + i * 1000, i < 10 ? 1000 : 500).Fill((byte)(i + 1));
        var send = new[] { new UnderlayDatagram { Buffer = buf, Offset = 64, Length = 10_500, Peer = b.LocalEndpoint, SegmentSize = 1000 } };
        Assert.Equal(0, a.Send(send));

        var rx = new UnderlayDatagram[8];
        for (int i = 0; i < rx.Length; i++) rx[i].Buffer = new PacketBuffer(Constants.GsoBufferSize);
        var got = new List<byte[]>();
        var deadline = DateTime.UtcNow.AddSeconds(5);
        while (got.Count < 11 && DateTime.UtcNow < deadline)
        {
            int n = b.Receive(rx, 0);
            for (int i = 0; i < n; i++)
            {
                int size = rx[i].SegmentSize > 0 ? rx[i].SegmentSize : rx[i].Length;
                for (int at = 0; at < rx[i].Length; at += size)
                    got.Add(rx[i].Buffer.Span.Slice(rx[i].Offset + at, Math.Min(size, rx[i].Length - at)).ToArray());
            }
        }
        Assert.Equal(11, got.Count);
        for (int i = 0; i < 11; i++)
        {
            Assert.Equal(i < 10 ? 1000 : 500, got[i].Length);
            Assert.All(got[i], x => Assert.Equal((byte)(i + 1), x));
        }
    }

    [Fact]
    public void Udp_underlay_bind_errors_are_clear()
    {
        using var net = new TestNetwork("udpe");
        string ns = net.AddHost("h1", "192.0.2.1/24");
        var local = new VtepEndpoint(InMemoryHosts.Ip("192.0.2.1"), 4789);
        using var first = Netns.Namespaces.RunIn(ns, () => UdpUnderlay.Open(local, 8));
        var inUse = Assert.Throws<RouterException>(() => Netns.Namespaces.RunIn(ns, () => UdpUnderlay.Open(local, 8)));
        Assert.Equal(RouterErrorCode.PortInUse, inUse.Code);
        Assert.Contains("already in use", inUse.Message);
        var notHere = Assert.Throws<RouterException>(() => Netns.Namespaces.RunIn(ns, () => UdpUnderlay.Open(new VtepEndpoint(InMemoryHosts.Ip("192.0.2.99"), 4789), 8)));
        Assert.Equal(RouterErrorCode.AddressNotAvailable, notHere.Code);
    }
}
