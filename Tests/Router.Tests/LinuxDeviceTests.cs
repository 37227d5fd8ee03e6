using System.Net;
using System.Net.Sockets;
using UserOverlay.Router.Tap;
using UserOverlay.Router.Underlay;
using UserOverlay.Testing.Common;

namespace UserOverlay.Router.Tests;

/// <summary>The real edges against the kernel: a TAP created inside a namespace, and the recvmmsg/sendmmsg socket.</summary>
public class LinuxDeviceTests
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
        var co = new Offload.Coalescer(() => new PacketBuffer(Constants.GsoBufferSize), 0);
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

    /// <summary>Runs <paramref name="action"/> on a new thread pinned to <paramref name="cpu"/>.</summary>
    private static void OnCpu(int cpu, Action action)
    {
        Exception? failed = null;
        var t = new Thread(() =>
        {
            try
            {
                Assert.True(Pipeline.CpuSteering.PinCurrentThread(cpu), $"cannot pin to CPU {cpu}");
                action();
            }
            catch (Exception e) { failed = e; }
        });
        t.Start();
        t.Join();
        if (failed is not null) throw new Xunit.Sdk.XunitException($"on CPU {cpu}: {failed}");
    }

    /// <summary>Reads what each queue of <paramref name="tap"/> holds until <paramref name="want"/> frames arrived (or 5 s): frame lengths per queue.</summary>
    private static List<int>[] DrainQueues(ITapDevice tap, int want)
    {
        var got = Enumerable.Range(0, tap.QueueCount).Select(_ => new List<int>()).ToArray();
        var bufs = new[] { new PacketBuffer(Constants.GsoBufferSize), new PacketBuffer(Constants.GsoBufferSize) };
        var sizes = new int[2];
        var offloads = new Offload.OffloadInfo[2];
        var deadline = DateTime.UtcNow.AddSeconds(5);
        while (got.Sum(g => g.Count) < want && DateTime.UtcNow < deadline)
            for (int q = 0; q < tap.QueueCount; q++)
            {
                int n = tap.Queue(q).Read(bufs, sizes, offloads, Constants.Headroom);
                for (int i = 0; i < n; i++)
                    if (bufs[i].Span[Constants.Headroom + 12] == 0x08 && bufs[i].Span[Constants.Headroom + 13] == 0x00) got[q].Add(sizes[i]); // IPv4 only (not IPv6 ND)
            }
        return got;
    }

    [Fact]
    public void Multi_queue_tap_hands_each_frame_to_the_queue_of_the_cpu_that_sent_it_and_bulk_to_the_next()
    {
        Requires.Root();
        Requires.Cpus(2);
        using var net = new TestNetwork("mq");
        string ns = net.AddNamespace("c1");
        var mac = MacAddress.Parse("02:00:c6:12:00:01");
        using var tap = LinuxTap.Create(new TapRequest(ns, "eth0", mac, 1400, InMemoryHosts.Ip("198.18.0.1"), 24, Offload: true, Queues: 2));
        Assert.Equal(2, tap.QueueCount);
        Assert.Contains("numqueues 2", TestNetwork.Exec(ns, "ip -d link show eth0").EnsureSuccess().StdOut);
        TestNetwork.Exec(ns, "ip neigh replace 198.18.0.2 lladdr 02:00:c6:12:00:02 nud permanent dev eth0").EnsureSuccess(); // no ARP
        using var sock = NetnsSockets.Udp(ns, new IPEndPoint(IPAddress.Any, 0));
        var to = new IPEndPoint(IPAddress.Parse("198.18.0.2"), 5000);
        for (int cpu = 0; cpu < 2; cpu++)
        {
            OnCpu(cpu, () => { for (int i = 0; i < 5; i++) sock.SendTo(new byte[32], to); });
            var small = DrainQueues(tap, 5);
            Assert.Equal(5, small[cpu].Count);          // a small frame stays on the sender's CPU
            Assert.Empty(small[1 - cpu]);
            OnCpu(cpu, () => { for (int i = 0; i < 5; i++) sock.SendTo(new byte[1000], to); });
            var bulk = DrainQueues(tap, 5);
            Assert.Equal(5, bulk[1 - cpu].Count);       // bulk goes to the next CPU's queue
            Assert.Empty(bulk[cpu]);
        }
    }

    [Fact]
    public void Udp_queue_group_hands_each_datagram_to_the_socket_of_the_cpu_it_arrived_on_and_bulk_to_the_next()
    {
        Requires.Root();
        Requires.Cpus(2);
        using var net = new TestNetwork("mqu");
        string ns = net.AddHost("h1", "192.0.2.1/24");
        var local = new VtepEndpoint(InMemoryHosts.Ip("192.0.2.1"), 4789);
        using var q0 = Netns.Namespaces.RunIn(ns, () => UdpUnderlay.Open(local, 8, 0, 2));
        using var q1 = Netns.Namespaces.RunIn(ns, () => UdpUnderlay.Open(local, 8, 1, 2));
        UdpUnderlay[] queues = [q0, q1];
        // Another router (or anything else) on the port is still refused, with the usual sentence.
        var inUse = Assert.Throws<RouterException>(() => Netns.Namespaces.RunIn(ns, () => UdpUnderlay.Open(local, 8, 0, 2)));
        Assert.Equal(RouterErrorCode.PortInUse, inUse.Code);
        Assert.Equal(RouterErrorCode.PortInUse, Assert.Throws<RouterException>(() => Netns.Namespaces.RunIn(ns, () => UdpUnderlay.Open(local, 8))).Code);

        using var sender = NetnsSockets.Udp(ns, new IPEndPoint(IPAddress.Parse("192.0.2.1"), 0));
        var to = new IPEndPoint(IPAddress.Parse("192.0.2.1"), 4789);
        var rx = new UnderlayDatagram[8];
        for (int i = 0; i < rx.Length; i++) rx[i].Buffer = new PacketBuffer(Constants.GsoBufferSize);
        int Datagrams(int n) => rx.Take(n).Sum(d => d.SegmentSize > 0 ? (d.Length + d.SegmentSize - 1) / d.SegmentSize : 1); // GRO may join some
        int[] Count(int want)
        {
            var counts = new int[2];
            var deadline = DateTime.UtcNow.AddSeconds(5);
            while (counts.Sum() < want && DateTime.UtcNow < deadline)
                for (int q = 0; q < 2; q++) counts[q] += Datagrams(queues[q].Receive(rx, 0));
            Thread.Sleep(50);
            for (int q = 0; q < 2; q++) counts[q] += Datagrams(queues[q].Receive(rx, 0)); // nothing more may arrive anywhere
            return counts;
        }
        for (int cpu = 0; cpu < 2; cpu++)
        {
            OnCpu(cpu, () => { for (int i = 0; i < 4; i++) sender.SendTo(new byte[100], to); });
            var small = Count(4);
            Assert.Equal(4, small[cpu]);
            Assert.Equal(0, small[1 - cpu]);
            OnCpu(cpu, () => { for (int i = 0; i < 4; i++) sender.SendTo(new byte[1400], to); });
            var bulk = Count(4);
            Assert.Equal(4, bulk[1 - cpu]);
            Assert.Equal(0, bulk[cpu]);
        }
    }

    [Fact]
    public void A_router_with_more_queues_than_cpus_and_the_largest_batches_starts_and_forwards_with_and_without_io_uring()
    {
        Requires.Root();
        using var net = new TestNetwork("mqr");
        string[] hosts = [net.AddHost("h1", "192.0.2.1/24"), net.AddHost("h2", "192.0.2.2/24")];
        string[] endpoints = [net.AddNamespace("c1"), net.AddNamespace("c2")];
        RouterOptions Options(int i) => new()
        {
            Underlay = InMemoryHosts.Vtep(i),
            Peers = [InMemoryHosts.Vtep(3 - i)],
            Networks = [InMemoryHosts.Blue],
            Endpoints = [InMemoryHosts.Endpoint("blue", endpoints[i - 1], $"198.18.0.1{i}")],
            Queues = 16,      // workers past the CPU count run unpinned
            BatchSize = 1024, // every worker holds two batches of 64 KB buffers
            IoUring = i == 1, // and one system call per frame on the other side
        };
        using var r1 = Netns.Namespaces.RunIn(hosts[0], () => OverlayRouter.Start(Options(1)));
        using var r2 = Netns.Namespaces.RunIn(hosts[1], () => OverlayRouter.Start(Options(2)));
        Assert.Equal(16, r1.GetStatus().Queues);
        Assert.Equal("io_uring", r1.GetStatus().TapIo);
        Assert.Equal("syscalls", r2.GetStatus().TapIo);
        Assert.Contains("numqueues 16", TestNetwork.Exec(endpoints[0], "ip -d link show eth0").EnsureSuccess().StdOut);
        Assert.True(TestNetwork.Ping(endpoints[0], "198.18.0.12", count: 3, minReplies: 2));
        Assert.True(TestNetwork.Ping(endpoints[1], "198.18.0.11", count: 3, minReplies: 2));
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
            int n = tap.ReadThrough(null, bufs, sizes, offloads, Constants.Headroom, round, out more);
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
        Exception? failed = null;
        var t = new Thread(() => { try { Body(); } catch (Exception e) { failed = e; } }); // the ring belongs to the thread that made it
        t.Start();
        t.Join();
        if (failed is not null) System.Runtime.ExceptionServices.ExceptionDispatchInfo.Capture(failed).Throw();

        void Body()
        {
            using var ring = IoRing.TryCreate(64, out string? why);
            Assert.True(ring is not null, $"io_uring: {why}");

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
                int n = tap.ReadThrough(ring!, bufs, sizes, offloads, Constants.Headroom, round++, out bool more);
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
            int extra = tap.ReadThrough(ring!, bufs, sizes, offloads, Constants.Headroom, round++, out bool more2);
            Assert.False(more2);
            for (int i = 0; i < extra; i++) Assert.False(bufs[i].Span[Constants.Headroom + 12] == 0x08 && bufs[i].Span[Constants.Headroom + 13] == 0x00, "nothing left");

            // Writes: 40 frames queued and flushed together arrive in order; a frame the TAP refuses (shorter than an
            // Ethernet header) moves from delivered to dropped; a lone frame is written directly.
            using var rx = NetnsSockets.Udp(ns, new IPEndPoint(IPAddress.Parse("198.18.0.1"), 6000));
            rx.ReceiveTimeout = 5000;
            var queue = new Pipeline.TapWriteQueue();
            queue.Attach(ring!);
            var c = new TrafficCounters();
            var frames = Enumerable.Range(0, 41).Select(_ => new PacketBuffer()).ToArray();
            for (int i = 0; i < 40; i++)
            {
                var udp = Packets.Udp4(peerMac, mac, "198.18.0.2", "198.18.0.1", 4, dstPort: 6000);
                BitConverter.GetBytes(i).CopyTo(udp, udp.Length - 4);
                FixUdpChecksum(udp);
                udp.CopyTo(frames[i].Span[Constants.Headroom..]);
                queue.Deliver(tap, frames[i].Span.Slice(Constants.Headroom, udp.Length), c);
                if (i == 20) queue.Deliver(tap, frames[40].Span.Slice(Constants.Headroom, 10), c); // refused: -EINVAL
            }
            Assert.Equal(41, c.DeliveredFrames); // counted when queued
            queue.Flush();
            Assert.Equal(40, c.DeliveredFrames);
            Assert.Equal(1, c.Drops[(int)DropReason.EndpointWriteFailed]);
            var buf = new byte[64];
            var got = new List<int>();
            for (int i = 0; i < 40; i++) { int n = rx.Receive(buf); Assert.Equal(4, n); got.Add(BitConverter.ToInt32(buf)); }
            Assert.Equal(Enumerable.Range(0, 40), got);
            queue.Deliver(tap, frames[7].Span.Slice(Constants.Headroom, 46), c);
            queue.Flush();
            Assert.Equal(4, rx.Receive(buf));
            Assert.Equal(7, BitConverter.ToInt32(buf));
            queue.Dispose();
        }
    }

    private static void FixUdpChecksum(byte[] frame)
    {
        frame[14 + 20 + 6] = 0; // IPv4 UDP checksum optional: none
        frame[14 + 20 + 7] = 0;
    }

    [Fact]
    public void Udp_queue_group_spills_a_flood_of_small_datagrams_to_the_next_cpu_and_keeps_a_trickle_local()
    {
        Requires.Root();
        Requires.Cpus(2);
        using var net = new TestNetwork("spill");
        string ns = net.AddHost("h1", "192.0.2.1/24");
        var local = new VtepEndpoint(InMemoryHosts.Ip("192.0.2.1"), 4789);
        using var q0 = Netns.Namespaces.RunIn(ns, () => UdpUnderlay.Open(local, 64, 0, 2));
        using var q1 = Netns.Namespaces.RunIn(ns, () => UdpUnderlay.Open(local, 64, 1, 2));
        UdpUnderlay[] queues = [q0, q1];
        using var sender = NetnsSockets.Udp(ns, new IPEndPoint(IPAddress.Parse("192.0.2.1"), 0));
        var to = new IPEndPoint(IPAddress.Parse("192.0.2.1"), 4789);
        var rx = new UnderlayDatagram[64];
        for (int i = 0; i < rx.Length; i++) rx[i].Buffer = new PacketBuffer(Constants.GsoBufferSize);
        int Datagrams(int n) => rx.Take(n).Sum(d => d.SegmentSize > 0 ? (d.Length + d.SegmentSize - 1) / d.SegmentSize : 1);
        int[] Count(int want)
        {
            var counts = new int[2];
            var deadline = DateTime.UtcNow.AddSeconds(5);
            while (counts.Sum() < want && DateTime.UtcNow < deadline)
                for (int q = 0; q < 2; q++) counts[q] += Datagrams(queues[q].Receive(rx, 0));
            return counts;
        }
        // A trickle (one datagram every 5 ms) stays on the CPU it arrived on.
        OnCpu(0, () => { for (int i = 0; i < 10; i++) { sender.SendTo(new byte[100], to); Thread.Sleep(5); } });
        var trickle = Count(10);
        Assert.Equal(new[] { 10, 0 }, trickle);
        // A burst of 150 back to back: the first of each millisecond stay, the rest go to the next CPU's socket.
        // (The sender may be preempted between sends, which only opens new windows: retried to stay robust.)
        int[] burst = [];
        for (int attempt = 0; attempt < 3; attempt++)
        {
            OnCpu(0, () => { for (int i = 0; i < 150; i++) sender.SendTo(new byte[100], to); });
            burst = Count(150);
            Assert.Equal(150, burst.Sum());
            if (burst[1] > 0) break;
        }
        Assert.True(burst[0] >= Pipeline.CpuSteering.SpillThreshold, $"CPU 0 kept {burst[0]}");
        Assert.True(burst[1] > 0, $"nothing spilled: {burst[0]} / {burst[1]}");
    }

    [Fact]
    public void Raw_esp_sockets_of_several_queues_each_keep_the_packets_steered_to_their_cpu_once_and_spill_a_flood()
    {
        Requires.Root();
        Requires.Cpus(2);
        using var net = new TestNetwork("mqesp");
        string ns = net.AddHost("h1", "192.0.2.1/24");
        var local = new VtepEndpoint(InMemoryHosts.Ip("192.0.2.1"), 0);
        using var q0 = Netns.Namespaces.RunIn(ns, () => UdpUnderlay.OpenRawEsp(local, 8, 0, 2));
        using var q1 = Netns.Namespaces.RunIn(ns, () => UdpUnderlay.OpenRawEsp(local, 8, 1, 2));
        UdpUnderlay[] queues = [q0, q1];
        using var sender = NetnsSockets.Raw(ns, Interop.IPPROTO_ESP);
        var to = new IPEndPoint(IPAddress.Parse("192.0.2.1"), 0);
        var rx = new UnderlayDatagram[8];
        for (int i = 0; i < rx.Length; i++) rx[i].Buffer = new PacketBuffer(Constants.GsoBufferSize);
        uint seq = 0;
        byte[] Esp(int size) // SPI 0x1000 and a new sequence number: what tells one packet from the next
        {
            var p = new byte[size];
            System.Buffers.Binary.BinaryPrimitives.WriteUInt32BigEndian(p, 0x1000);
            System.Buffers.Binary.BinaryPrimitives.WriteUInt32BigEndian(p.AsSpan(4), ++seq);
            return p;
        }
        int[] Count(int want)
        {
            var counts = new int[2];
            var deadline = DateTime.UtcNow.AddSeconds(5);
            while (counts.Sum() < want && DateTime.UtcNow < deadline)
                for (int q = 0; q < 2; q++) counts[q] += queues[q].Receive(rx, 0);
            Thread.Sleep(50);
            for (int q = 0; q < 2; q++) counts[q] += queues[q].Receive(rx, 0); // no copy anywhere else
            return counts;
        }
        for (int cpu = 0; cpu < 2; cpu++)
        {
            OnCpu(cpu, () => { for (int i = 0; i < 4; i++) sender.SendTo(Esp(100), to); });
            var small = Count(4);
            Assert.Equal(4, small[cpu]);       // each packet once, on the socket of the CPU it arrived on
            Assert.Equal(0, small[1 - cpu]);
            OnCpu(cpu, () => { for (int i = 0; i < 4; i++) sender.SendTo(Esp(1000), to); });
            var bulk = Count(4);
            Assert.Equal(4, bulk[1 - cpu]);    // bulk on the next CPU's
            Assert.Equal(0, bulk[cpu]);
        }
        // A burst of 150 back to back from CPU 0: still each packet exactly once, the first of each millisecond on
        // CPU 0's socket and the rest spilled to CPU 1's (retried: a preempted sender only opens new windows).
        int[] burst = [];
        for (int attempt = 0; attempt < 3; attempt++)
        {
            OnCpu(0, () => { for (int i = 0; i < 150; i++) sender.SendTo(Esp(100), to); });
            burst = Count(150);
            Assert.Equal(150, burst.Sum());
            if (burst[1] > 0) break;
        }
        Assert.True(burst[0] >= Pipeline.CpuSteering.SpillThreshold, $"CPU 0 kept {burst[0]}");
        Assert.True(burst[1] > 0, $"nothing spilled: {burst[0]} / {burst[1]}");
    }
}
