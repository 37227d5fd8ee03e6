using System.Net;
using System.Net.Sockets;
using UserOverlay.Router.Forwarding;
using UserOverlay.Router.Linux;
using UserOverlay.Router.Tap;
using UserOverlay.Router.Testing;
using UserOverlay.Testing.Common;

namespace UserOverlay.Router.Tests;

/// <summary>The TAP edge against the kernel: a device created inside a namespace, its offloads, its read policy and its io_uring path.</summary>
[Collection(LinuxDeviceCollection.Name)]
public class TapDeviceTests
{
    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public void Tap_is_created_in_the_namespace_configured_and_carries_frames_both_ways(bool offload)
    {
        using var net = new TestNetwork("tap");
        string ns = net.AddNamespace("c1");
        var mac = MacAddress.Parse("02:00:c6:12:00:01");
        using var tap = LinuxTap.Create(new TapRequest(ns, "eth0", mac, 1400, InMemoryHosts.Ip("198.18.0.1"), 24, offload));
        Assert.Equal(offload, tap.SupportsOffload);

        var link = TestNetwork.Exec(ns, "ip -o link show eth0").EnsureSuccess().StdOut;
        Assert.Contains("mtu 1400", link);
        Assert.Contains("02:00:c6:12:00:01", link);
        Assert.Contains("UP", link);
        Assert.Contains("198.18.0.1/24", TestNetwork.Exec(ns, "ip -o addr show eth0").StdOut);
        Assert.DoesNotContain("02:00:c6:12:00:01", Shell.Run("ip -o link show").StdOut); // born in the namespace, not in the test's

        // The kernel in the namespace sends a datagram to 198.18.0.2: first it ARPs on the TAP.
        using var sock = NetnsSockets.Udp(ns, new IPEndPoint(IPAddress.Any, 0));
        sock.SendTo(new byte[] { 1, 2, 3, 4 }, new IPEndPoint(IPAddress.Parse("198.18.0.2"), 5000));
        var bufs = new[] { new PacketBuffer(), new PacketBuffer() };
        var sizes = new int[2];
        var offloads = new Offload.OffloadInfo[2];
        byte[]? arpFrame = null;
        SpinWait.SpinUntil(() =>
        {
            int n = tap.Read(bufs, sizes, offloads, Constants.Headroom);
            for (int i = 0; i < n; i++)
            {
                var f = bufs[i].Span.Slice(Constants.Headroom, sizes[i]).ToArray();
                if (f[12] == 0x08 && f[13] == 0x06) arpFrame = f;
            }
            return arpFrame is not null;
        }, TimeSpan.FromSeconds(5));
        Assert.NotNull(arpFrame);
        var arp = Packets.Parse(arpFrame).Extract<PacketDotNet.ArpPacket>();
        Assert.Equal("198.18.0.2", arp.TargetProtocolAddress.ToString());

        // We answer through Write; the kernel then sends the queued UDP datagram to the answered MAC.
        var peerMac = MacAddress.Parse("02:00:c6:12:00:02");
        Assert.True(tap.Write(Packets.ArpReply(peerMac, "198.18.0.2", mac, "198.18.0.1")));
        byte[]? udpFrame = null;
        SpinWait.SpinUntil(() =>
        {
            int n = tap.Read(bufs, sizes, offloads, Constants.Headroom);
            for (int i = 0; i < n; i++)
            {
                var f = bufs[i].Span.Slice(Constants.Headroom, sizes[i]).ToArray();
                if (f[12] == 0x08 && f[13] == 0x00) udpFrame = f;
            }
            return udpFrame is not null;
        }, TimeSpan.FromSeconds(5));
        Assert.NotNull(udpFrame);
        var eth = Packets.Parse(udpFrame);
        Assert.Equal(Packets.Phys(peerMac), eth.DestinationHardwareAddress);
        Assert.Equal(new byte[] { 1, 2, 3, 4 }, eth.Extract<PacketDotNet.UdpPacket>().PayloadData);

        tap.Dispose();
        Assert.NotEqual(0, TestNetwork.Exec(ns, "ip link show eth0").ExitCode); // closing the fd removed the device
    }

    [Fact]
    public void Udp_super_frames_written_to_a_tap_reach_the_endpoint_as_the_original_datagrams()
    {
        using var net = new TestNetwork("uso");
        string ns = net.AddNamespace("c1");
        var mac = MacAddress.Parse("02:00:c6:12:00:01");
        using var tap = LinuxTap.Create(new TapRequest(ns, "eth0", mac, 1400, InMemoryHosts.Ip("198.18.0.1"), 24, Offload: true));
        var kernel = Environment.OSVersion.Version;
        if (kernel < new Version(6, 2))
        {
            Assert.False(tap.SupportsUdpSegmentation); // older kernels: UDP goes one datagram per write
            return;
        }
        Assert.True(tap.SupportsUdpSegmentation);

        using var sock = NetnsSockets.Udp(ns, new IPEndPoint(IPAddress.Parse("198.18.0.1"), 5201));
        sock.ReceiveTimeout = 5000;
        using var h = new Testing.PipelineHarness();
        var port = new Forwarding.LocalPort(9, h.Network, new EndpointOptions { Network = "blue", Netns = ns, Address = 0xC612_0001, PrefixLength = 24 }, tap);
        var co = new Offload.Coalescer(() => new PacketBuffer(Constants.GsoBufferSize), 0, new Pipeline.TapWriteQueue());
        var c = new TrafficCounters();
        var peer = MacAddress.Parse("02:00:c6:12:00:0c");
        var sent = new List<byte[]>();
        for (int i = 0; i < 20; i++)
        {
            int len = i < 19 ? 64 : 17; // the last one shorter, as the kernel allows
            var frame = Packets.Udp4(peer, mac, "198.18.0.12", "198.18.0.1", len, srcPort: 40000, dstPort: 5201);
            frame[14 + 20 + 8] = (byte)i; // tell the datagrams apart
            var udp = Packets.Parse(frame).Extract<PacketDotNet.UdpPacket>();
            udp.UpdateUdpChecksum();
            frame = Packets.Parse(frame).Bytes;
            sent.Add(frame.AsSpan(14 + 20 + 8).ToArray());
            Assert.True(co.Offer(port, frame, c));
        }
        co.Flush();
        Assert.Equal(0, c.Drops.Sum()); // one write was accepted
        var got = new List<byte[]>();
        var buf = new byte[2000];
        for (int i = 0; i < sent.Count; i++)
        {
            int n = sock.Receive(buf);
            got.Add(buf[..n]);
        }
        Assert.Equal(sent, got); // every datagram, intact and in order
    }

    [Fact]
    public void Tap_errors_are_clear()
    {
        using var net = new TestNetwork("tape");
        string ns = net.AddNamespace("c1");
        var missing = Assert.Throws<RouterException>(() => LinuxTap.Create(new TapRequest(net.Prefix + "absent", "eth0", MacAddress.Parse("02:00:00:00:00:01"), 1450, InMemoryHosts.Ip("198.18.0.1"), 24)));
        Assert.Equal(RouterErrorCode.NamespaceNotFound, missing.Code);
        Assert.Contains("ip netns add", missing.Message);

        TestNetwork.Exec(ns, "ip link add eth0 type veth peer name eth1").EnsureSuccess();
        var exists = Assert.Throws<RouterException>(() => LinuxTap.Create(new TapRequest(ns, "eth0", MacAddress.Parse("02:00:00:00:00:01"), 1450, InMemoryHosts.Ip("198.18.0.1"), 24)));
        Assert.Equal(RouterErrorCode.InterfaceExists, exists.Code);
    }

    [Fact]
    public void A_quiet_tap_queue_is_read_once_per_round_and_a_busy_one_is_drained()
    {
        Requires.Root();
        using var net = new TestNetwork("quiet");
        string ns = net.AddNamespace("c1");
        using var tap = LinuxTap.Create(new TapRequest(ns, "eth0", MacAddress.Parse("02:00:c6:12:00:01"), 1400, InMemoryHosts.Ip("198.18.0.1"), 24, false));
        TestNetwork.Exec(ns, "ip neigh replace 198.18.0.2 lladdr 02:00:c6:12:00:02 nud permanent dev eth0").EnsureSuccess(); // no ARP
        using var sock = NetnsSockets.Udp(ns, new IPEndPoint(IPAddress.Any, 0));
        var to = new IPEndPoint(IPAddress.Parse("198.18.0.2"), 5000);
        for (int i = 0; i < 4; i++) sock.SendTo(BitConverter.GetBytes(i), to);
        var bufs = Enumerable.Range(0, 16).Select(_ => new PacketBuffer()).ToArray();
        var sizes = new int[16];
        var offloads = new Offload.OffloadInfo[16];
        var seen = new List<int>();
        int Read(long round, out bool more)
        {
            int n = tap.Read(new TapReadContext(round), bufs, sizes, offloads, Constants.Headroom, out more);
            for (int i = 0; i < n; i++)
            {
                var f = bufs[i].Span.Slice(Constants.Headroom, sizes[i]).ToArray();
                if (f[12] == 0x08 && f[13] == 0x00) seen.Add(BitConverter.ToInt32(Packets.Parse(f).Extract<PacketDotNet.UdpPacket>().PayloadData));
            }
            return n;
        }

        // Rounds 10 and 20 are not consecutive: each reads one frame and leaves the rest to epoll (no probing read).
        Assert.Equal(1, Read(10, out bool more));
        Assert.False(more);
        Assert.Equal(1, Read(20, out more));
        Assert.False(more);
        // Round 21 follows a round that read the queue: busy, drained to EAGAIN.
        Assert.True(Read(21, out more) >= 2, "the two frames the quiet rounds left");
        Assert.False(more);
        Assert.Equal([0, 1, 2, 3], seen);
        Assert.Equal(0, Read(22, out more));
        Assert.False(more);
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public void Tap_reads_and_writes_through_an_io_uring_keep_order_and_count_what_the_tap_refuses(bool offload)
    {
        Requires.Root();
        using var net = new TestNetwork("uring");
        string ns = net.AddNamespace("c1");
        var mac = MacAddress.Parse("02:00:c6:12:00:01");
        var peerMac = MacAddress.Parse("02:00:c6:12:00:02");
        using var tap = LinuxTap.Create(new TapRequest(ns, "eth0", mac, 1400, InMemoryHosts.Ip("198.18.0.1"), 24, offload));
        TestNetwork.Exec(ns, "ip neigh replace 198.18.0.2 lladdr 02:00:c6:12:00:02 nud permanent dev eth0").EnsureSuccess(); // no ARP
        OnRingThread(Body);

        void Body(IoRing ring)
        {

            // Reads: 40 datagrams queued on the TAP come out in order; the first drain uses read(2), the next ones the ring.
            using var sock = NetnsSockets.Udp(ns, new IPEndPoint(IPAddress.Any, 0));
            var to = new IPEndPoint(IPAddress.Parse("198.18.0.2"), 5000);
            for (int i = 0; i < 40; i++) sock.SendTo(BitConverter.GetBytes(i), to);
            var bufs = Enumerable.Range(0, 16).Select(_ => new PacketBuffer(Constants.GsoBufferSize)).ToArray();
            var sizes = new int[16];
            var offloads = new Offload.OffloadInfo[16];
            var seen = new List<int>();
            var ringReads = new List<int>();
            var deadline = DateTime.UtcNow.AddSeconds(5);
            long round = 0; // one read per worker round, every round: a busy queue
            while (seen.Count < 40 && DateTime.UtcNow < deadline)
            {
                ringReads.Add(tap.RingReads);
                int n = tap.Read(new TapReadContext(round++, ring), bufs, sizes, offloads, Constants.Headroom, out bool more);
                Assert.True(n <= bufs.Length);
                if (n < bufs.Length) Assert.False(more);
                for (int i = 0; i < n; i++)
                {
                    var f = bufs[i].Span.Slice(Constants.Headroom, sizes[i]).ToArray();
                    if (f[12] == 0x08 && f[13] == 0x00) seen.Add(BitConverter.ToInt32(Packets.Parse(f).Extract<PacketDotNet.UdpPacket>().PayloadData));
                }
            }
            Assert.Equal(Enumerable.Range(0, 40), seen);
            Assert.True(ringReads[0] <= 2, "a first drain uses read(2)");
            Assert.Contains(ringReads, r => r > 2); // a full drain makes the next one go through the ring
            int extra = tap.Read(new TapReadContext(round++, ring), bufs, sizes, offloads, Constants.Headroom, out bool more2);
            Assert.False(more2);
            for (int i = 0; i < extra; i++) Assert.False(bufs[i].Span[Constants.Headroom + 12] == 0x08 && bufs[i].Span[Constants.Headroom + 13] == 0x00, "nothing left");

            // Writes: 40 frames queued and flushed together arrive in order; a frame the TAP refuses (shorter than an
            // Ethernet header) moves from delivered to dropped; a lone frame is written directly.
            using var rx = NetnsSockets.Udp(ns, new IPEndPoint(IPAddress.Parse("198.18.0.1"), 6000));
            rx.ReceiveTimeout = 5000;
            using var h = new PipelineHarness();
            var port = new LocalPort(9, h.Network, new EndpointOptions { Network = "blue", Netns = ns, Address = InMemoryHosts.Ip("198.18.0.1"), PrefixLength = 24 }, tap);
            Assert.Equal(tap.WriteFd, port.RingFd); // the kernel TAP is ring-writable
            var queue = new Pipeline.TapWriteQueue();
            queue.Attach(ring);
            var c = new TrafficCounters();
            var frames = Enumerable.Range(0, 41).Select(_ => new PacketBuffer()).ToArray();
            for (int i = 0; i < 40; i++)
            {
                var udp = Packets.Udp4(peerMac, mac, "198.18.0.2", "198.18.0.1", 4, dstPort: 6000);
                BitConverter.GetBytes(i).CopyTo(udp, udp.Length - 4);
                FixUdpChecksum(udp);
                udp.CopyTo(frames[i].Span[Constants.Headroom..]);
                queue.Deliver(port, frames[i].Span.Slice(Constants.Headroom, udp.Length), c);
                if (i == 20) queue.Deliver(port, frames[40].Span.Slice(Constants.Headroom, 10), c); // refused: -EINVAL
            }
            Assert.Equal(41, c.DeliveredFrames); // counted when queued
            queue.Flush();
            Assert.Equal(40, c.DeliveredFrames);
            Assert.Equal(1, c.Drops[(int)DropReason.EndpointWriteFailed]);
            var buf = new byte[64];
            var got = new List<int>();
            for (int i = 0; i < 40; i++) { int n = rx.Receive(buf); Assert.Equal(4, n); got.Add(BitConverter.ToInt32(buf)); }
            Assert.Equal(Enumerable.Range(0, 40), got);
            queue.Deliver(port, frames[7].Span.Slice(Constants.Headroom, 46), c);
            queue.Flush();
            Assert.Equal(4, rx.Receive(buf));
            Assert.Equal(7, BitConverter.ToInt32(buf));
            queue.Dispose();
        }
    }

    [Fact]
    public void Same_host_frames_go_through_the_worker_tap_writes_and_leave_when_the_round_is_flushed()
    {
        Requires.Root();
        using var net = new TestNetwork("uring2");
        var (endpoint, tap, rx) = SameHostTarget(net);
        using var tapToDispose = tap;
        using var rxToDispose = rx;
        OnRingThread(Body);

        void Body(IoRing ring)
        {
            using var h = new PipelineHarness();
            var target = new LocalPort(5, h.Network, endpoint, tap);
            h.State.AddPort(target, Environment.TickCount64);
            using var writes = new Pipeline.TapWriteQueue();
            writes.Attach(ring);
            var outbound = new Pipeline.Outbound(h.State, h.Underlay, 0, writes: writes);
            var (buf, length) = FrameCarrying42(h.Ports[0], endpoint);

            outbound.ProcessFrame(h.Ports[0], buf, Constants.Headroom, length, Environment.TickCount64);
            var c = h.Network.Counters[0];
            Assert.Equal(1, c.DeliveredFrames); // counted when queued
            rx.ReceiveTimeout = 300;
            var got = new byte[64];
            Assert.Throws<SocketException>(() => rx.Receive(got)); // queued on the worker's ring, not written yet
            outbound.Flush(); // the end of the round
            rx.ReceiveTimeout = 5000;
            Assert.Equal(4, rx.Receive(got));
            Assert.Equal(42, BitConverter.ToInt32(got));
            Assert.Equal(0, c.Drops[(int)DropReason.EndpointWriteFailed]);
        }
    }

    [Fact]
    public void A_frame_flooded_on_an_encrypted_network_reaches_a_ring_written_tap_in_plaintext_before_its_last_copy_is_sealed_in_place()
    {
        Requires.Root();
        using var net = new TestNetwork("uring3");
        var (endpoint, tap, rx) = SameHostTarget(net);
        using var tapToDispose = tap;
        using var rxToDispose = rx;
        OnRingThread(Body);

        void Body(IoRing ring)
        {
            using var h = new PipelineHarness(encrypted: true);
            var target = new LocalPort(5, h.Network, endpoint, tap);
            h.Network.Ports.Add(target); // no FDB entry: its MAC is unknown unicast, so the frame is flooded
            using var writes = new Pipeline.TapWriteQueue();
            writes.Attach(ring);
            var outbound = new Pipeline.Outbound(h.State, h.Underlay, 0, h.EspUnderlay, writes: writes);
            var (buf, length) = FrameCarrying42(h.Ports[0], endpoint);

            outbound.ProcessFrame(h.Ports[0], buf, Constants.Headroom, length, Environment.TickCount64);
            outbound.Flush();
            Assert.Equal(3, h.EspUnderlay!.Datagrams); // sealed once per peer, the last in place
            rx.ReceiveTimeout = 5000;
            var got = new byte[64];
            Assert.Equal(4, rx.Receive(got));
            Assert.Equal(42, BitConverter.ToInt32(got));
        }
    }

    /// <summary>Runs <paramref name="body"/> on a new thread with an io_uring of its own (a ring belongs to the thread that made it).</summary>
    private static void OnRingThread(Action<IoRing> body)
    {
        Exception? failed = null;
        var t = new Thread(() =>
        {
            try
            {
                using var ring = IoRing.TryCreate(64, out string? why);
                Assert.True(ring is not null, $"io_uring: {why}");
                body(ring);
            }
            catch (Exception e) { failed = e; }
        });
        t.Start();
        t.Join();
        if (failed is not null) System.Runtime.ExceptionServices.ExceptionDispatchInfo.Capture(failed).Throw();
    }

    /// <summary>A TAP in a new namespace of <paramref name="net"/> at 198.18.0.1/24 (no offload), its endpoint, and a UDP socket on its port 6000.</summary>
    private static (EndpointOptions Endpoint, LinuxTap Tap, Socket Rx) SameHostTarget(TestNetwork net)
    {
        string ns = net.AddNamespace("c1");
        var endpoint = new EndpointOptions { Network = "blue", Netns = ns, Address = InMemoryHosts.Ip("198.18.0.1"), PrefixLength = 24 };
        var tap = LinuxTap.Create(new TapRequest(ns, "eth0", endpoint.EffectiveMac, 1400, endpoint.Address, 24, Offload: false));
        return (endpoint, tap, NetnsSockets.Udp(ns, new IPEndPoint(IPAddress.Parse("198.18.0.1"), 6000)));
    }

    /// <summary>Loads a UDP frame carrying 42 from <paramref name="from"/> to <paramref name="to"/>'s port 6000 into a new buffer at the headroom.</summary>
    private static (PacketBuffer Buffer, int Length) FrameCarrying42(LocalPort from, EndpointOptions to)
    {
        var udp = Packets.Udp4(new MacAddress(from.Mac), to.EffectiveMac, VtepEndpoint.FormatAddress(from.Address), VtepEndpoint.FormatAddress(to.Address), 4, dstPort: 6000);
        BitConverter.GetBytes(42).CopyTo(udp, udp.Length - 4);
        FixUdpChecksum(udp);
        var buf = new PacketBuffer();
        PipelineHarness.Load(buf, udp);
        return (buf, udp.Length);
    }

    private static void FixUdpChecksum(byte[] frame)
    {
        frame[14 + 20 + 6] = 0; // IPv4 UDP checksum optional: none
        frame[14 + 20 + 7] = 0;
    }
}
