using System.Net;
using UserOverlay.Router.Linux;
using UserOverlay.Router.Tap;
using UserOverlay.Router.Underlay;
using UserOverlay.Testing.Common;

namespace UserOverlay.Router.Tests;

/// <summary>CPU steering against the kernel: a multi-queue TAP, the SO_REUSEPORT group and the raw ESP sockets each hand a packet to the queue of its CPU (bulk and floods to the next one), and a router with many queues forwards.</summary>
[Collection(LinuxDeviceCollection.Name)]
public class CpuSteeringTests
{
    /// <summary>Runs <paramref name="action"/> on a new thread pinned to <paramref name="cpu"/>.</summary>
    private static void OnCpu(int cpu, Action action)
    {
        Exception? failed = null;
        var t = new Thread(() =>
        {
            try
            {
                Assert.True(CpuAffinity.PinCurrentThread(cpu), $"cannot pin to CPU {cpu}");
                action();
            }
            catch (Exception e) { failed = e; }
        });
        t.Start();
        t.Join();
        if (failed is not null) throw new Xunit.Sdk.XunitException($"on CPU {cpu}: {failed}");
    }

    /// <summary>
    /// Sends 150 small packets back to back from CPU 0 (<paramref name="sendOne"/> each) and, with
    /// <paramref name="count"/> (per queue, until that many arrived), asserts each arrived once, CPU 0's queue kept at
    /// least a window's worth and the rest spilled to CPU 1's. Retried up to three times: a preempted sender only opens
    /// new windows.
    /// </summary>
    private static void AssertBurstSpills(Action sendOne, Func<int, int[]> count)
    {
        int[] burst = [];
        for (int attempt = 0; attempt < 3; attempt++)
        {
            OnCpu(0, () => { for (int i = 0; i < 150; i++) sendOne(); });
            burst = count(150);
            Assert.Equal(150, burst.Sum());
            if (burst[1] > 0) break;
        }
        Assert.True(burst[0] >= QueuePolicy.SpillThreshold, $"CPU 0 kept {burst[0]}");
        Assert.True(burst[1] > 0, $"nothing spilled: {burst[0]} / {burst[1]}");
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
        AssertBurstSpills(() => sender.SendTo(new byte[100], to), Count);
    }

    [Fact]
    public void Raw_esp_sockets_of_several_queues_each_keep_the_packets_steered_to_their_cpu_once_and_spill_a_flood()
    {
        Requires.Root();
        Requires.Cpus(2);
        using var net = new TestNetwork("mqesp");
        string ns = net.AddHost("h1", "192.0.2.1/24");
        var local = new VtepEndpoint(InMemoryHosts.Ip("192.0.2.1"), 0);
        using var q0 = Netns.Namespaces.RunIn(ns, () => RawEspUnderlay.Open(local, 8, 0, 2));
        using var q1 = Netns.Namespaces.RunIn(ns, () => RawEspUnderlay.Open(local, 8, 1, 2));
        RawEspUnderlay[] queues = [q0, q1];
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
        AssertBurstSpills(() => sender.SendTo(Esp(100), to), Count);
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
}
