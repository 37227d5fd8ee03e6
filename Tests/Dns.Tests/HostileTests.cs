using System.Diagnostics;
using UserOverlay.Router;
using static UserOverlay.Dns.Tests.DnsHost;

namespace UserOverlay.Dns.Tests;

/// <summary>Hostile and malformed DNS at the gateway: dropped and counted by reason, never a crash, bounded, forwarding goes on.</summary>
public sealed class HostileTests
{
    private static readonly EndpointOptions[] Endpoints = [Endpoint("blue", "c1", "198.18.0.11"), Endpoint("blue", "c2", "198.18.0.12")];

    private static DnsHost Host()
    {
        var h = new DnsHost(Endpoints, new DnsResponderOptions { QueueCapacity = 64 });
        h.Names.SetNames("blue", MacOf("198.18.0.12"), Ip("198.18.0.12"), ["web"]);
        return h;
    }

    public static TheoryData<string, byte[], DnsDropReason> Malformed()
    {
        byte[] ok = Query(1, "web");
        byte[] header = ok[..12];
        return new()
        {
            { "header only", header, DnsDropReason.NotQuery },
            { "truncated question", ok[..19], DnsDropReason.Unparsable },
            { "shorter than a question", ok[..15], DnsDropReason.NotQuery },
            { "compression loop (self)", [.. header, 0xC0, 12, 0, 1, 0, 1], DnsDropReason.Unparsable },
            { "compression loop (two labels)", [.. header, 1, (byte)'a', 0xC0, 12, 0, 1, 0, 1], DnsDropReason.Unparsable },
            { "pointer past the end", [.. header, 0xC0, 200, 0, 1, 0, 1], DnsDropReason.Unparsable },
            { "a response", [ok[0], ok[1], 0x81, 0x80, .. ok[4..]], DnsDropReason.NotQuery },
            { "two questions", [ok[0], ok[1], 1, 0, 0, 2, .. ok[6..]], DnsDropReason.NotQuery },
            { "65535 questions", [ok[0], ok[1], 1, 0, 0xFF, 0xFF, .. ok[6..]], DnsDropReason.NotQuery },
            { "oversized", [.. ok, .. new byte[1300]], DnsDropReason.Oversized },
            { "label of 64", [.. header, 64, .. new byte[64], 0, 0, 1, 0, 1], DnsDropReason.Unparsable },
            { "additional record truncated", [ok[0], ok[1], 1, 0, 0, 1, 0, 0, 0, 0, 0, 1, .. ok[12..], 0, 0, 41], DnsDropReason.Unparsable },
        };
    }

    [Theory]
    [MemberData(nameof(Malformed))]
    public void A_malformed_query_is_dropped_with_its_reason_and_the_next_one_is_answered(string what, byte[] query, DnsDropReason reason)
    {
        using var h = Host();
        h.Tap("c1").Inject(UdpFrame("198.18.0.11", "198.18.0.1", BlueGatewayMac, 40000, query));
        Assert.True(SpinWait.SpinUntil(() => h.Responder.Counters.Dropped(reason) == 1, Wait), $"{what}: no {reason} drop; {string.Join(", ", h.Responder.Counters.Drops.Where(kv => kv.Value > 0))}");
        Assert.Null(h.Tap("c1").WaitTake(Quiet));
        Assert.Equal(["198.18.0.12"], h.AskDns("c1", "198.18.0.11", Query(2, "web")).AnswerRecords.OfType<ARSoft.Tools.Net.Dns.ARecord>().Select(a => a.Address.ToString()));
    }

    [Fact]
    public void Damaged_ip_and_fragments_are_dropped_as_such()
    {
        using var h = Host();
        var frame = UdpFrame("198.18.0.11", "198.18.0.1", BlueGatewayMac, 40000, Query(1, "web"));
        var badSum = (byte[])frame.Clone();
        badSum[14 + 10] ^= 0xFF;
        var fragment = UdpFrame("198.18.0.11", "198.18.0.1", BlueGatewayMac, 40000, Query(1, "web"));
        fragment[14 + 6] = 0x20; // MF
        fragment[14 + 10] = 0; fragment[14 + 11] = 0;
        ushort sum = Fold(fragment.AsSpan(14, 20));
        fragment[14 + 10] = (byte)(sum >> 8); fragment[14 + 11] = (byte)sum;
        var shortUdp = (byte[])frame.Clone();
        shortUdp[14 + 20 + 4] = 0xFF; // UDP length beyond the datagram
        h.Tap("c1").Inject(badSum);
        h.Tap("c1").Inject(fragment);
        h.Tap("c1").Inject(shortUdp);
        Assert.True(SpinWait.SpinUntil(() => h.Responder.Counters.Dropped(DnsDropReason.MalformedPacket) == 2 && h.Responder.Counters.Dropped(DnsDropReason.Fragment) == 1, Wait));
        Assert.Null(h.Tap("c1").WaitTake(Quiet));
    }

    private static ushort Fold(ReadOnlySpan<byte> b)
    {
        uint s = 0;
        for (int i = 0; i + 1 < b.Length; i += 2) s += (uint)(b[i] << 8 | b[i + 1]);
        while (s > 0xFFFF) s = (s & 0xFFFF) + (s >> 16);
        return (ushort)~s;
    }

    /// <summary>
    /// The heap once the responder's worker has gone quiet: the least of a few full collections, half a second apart, with
    /// the answers it wrote taken off the TAP, so garbage a still-busy worker makes between a collection and the reading
    /// (the machine may be loaded) does not count as held memory.
    /// </summary>
    private static long SettledHeap(DnsHost h)
    {
        long least = long.MaxValue;
        for (int i = 0; i < 4; i++)
        {
            SpinWait.SpinUntil(() => false, 500);
            while (h.Tap("c1").TryTake(out _)) { }
            least = Math.Min(least, GC.GetTotalMemory(forceFullCollection: true));
        }
        return least;
    }

    [Fact]
    public void A_flood_fills_the_queue_drops_count_queue_full_memory_stays_bounded_and_ping_and_forwarding_go_on()
    {
        using var h = Host();
        var query = UdpFrame("198.18.0.11", "198.18.0.1", BlueGatewayMac, 40000, Query(1, "web"));
        var loop = UdpFrame("198.18.0.11", "198.18.0.1", BlueGatewayMac, 40000, [.. Query(1, "web")[..12], 1, (byte)'a', 0xC0, 12, 0, 1, 0, 1]);
        // A frame between the two endpoints, and an echo to the gateway: both must get through while the flood runs.
        var toC2 = UdpFrame("198.18.0.11", "198.18.0.12", MacOf("198.18.0.12"), 40000, [1, 2, 3], dstPort: 9999);
        for (int i = 0; i < 2000; i++) h.Tap("c1").Inject(i % 2 == 0 ? query : loop); // warm the paths
        long before = SettledHeap(h);

        var sw = Stopwatch.StartNew();
        int delivered = 0;
        for (int round = 0; round < 200; round++)
        {
            for (int i = 0; i < 500; i++) h.Tap("c1").Inject(i % 2 == 0 ? query : loop);
            h.Tap("c1").Inject(toC2);
            if (h.Tap("c2").WaitTake(Wait) is { } got && got.Length == toC2.Length) delivered++;
            while (h.Tap("c1").TryTake(out _)) { } // the answers the worker got to
        }
        Assert.Equal(200, delivered); // forwarding never stalled behind DNS work
        Assert.True(h.Responder.Counters.Dropped(DnsDropReason.QueueFull) > 0, "a flood of 100,000 frames overflows a 64-slot queue");
        Assert.True(h.Responder.Counters.Dropped(DnsDropReason.Unparsable) > 0);

        // Memory: the flood is over once the queue drains; what is held is the fixed queue, whatever the flood's size.
        Assert.Equal(0, h.Router.GetStatus().Networks.Single(n => n.Name == "blue").Counters.Drops["gateway_unhandled"]); // every frame to port 53 was the responder's
        long after = SettledHeap(h);
        // A leak of 170 bytes per query would show as 16 MiB: the bound tells a queue of fixed size from one that grows.
        Assert.True(after - before < 16 << 20, $"managed heap grew {(after - before) >> 10} KiB over a flood of 100,000 queries");
        Assert.Equal(["198.18.0.12"], h.AskDns("c1", "198.18.0.11", Query(9, "web")).AnswerRecords.OfType<ARSoft.Tools.Net.Dns.ARecord>().Select(a => a.Address.ToString()));
    }
}

/// <summary>The pipeline's side of the responder (the gateway handler's filter and copy into the queue) allocates nothing.</summary>
public sealed class ZeroAllocationTests
{
    [Fact]
    public void OnFrame_allocates_nothing_whether_it_queues_drops_or_declines()
    {
        var names = new NameRegistry();
        using var responder = new DnsResponder(names, (_, _) => true, new DnsResponderOptions { QueueCapacity = 8 });
        var net = new GatewayNetwork("blue", 4097, Ip("198.18.0.1"), BlueGatewayMac, 1450);
        byte[] query = UdpFrame("198.18.0.11", "198.18.0.1", BlueGatewayMac, 40000, Query(1, "web"));
        byte[] other = UdpFrame("198.18.0.11", "198.18.0.1", BlueGatewayMac, 40000, [1, 2, 3], dstPort: 9999);
        byte[] reply = new byte[2048];
        for (int i = 0; i < 100; i++) { responder.OnFrame(net, query, reply); responder.OnFrame(net, other, reply); }
        int queued = 0, declined = 0;
        long before = GC.GetAllocatedBytesForCurrentThread();
        for (int i = 0; i < 1000; i++)
        {
            if (responder.OnFrame(net, query, reply) == 0) queued++;
            if (responder.OnFrame(net, other, reply) == -1) declined++;
        }
        long allocated = GC.GetAllocatedBytesForCurrentThread() - before;
        Assert.Equal((1000, 1000), (queued, declined));
        Assert.Equal(0, allocated);
    }
}
