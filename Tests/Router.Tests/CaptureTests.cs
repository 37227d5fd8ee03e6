using UserOverlay.Router.Capture;
using UserOverlay.Router.Testing;
using static UserOverlay.Router.Tests.InMemoryHosts;

namespace UserOverlay.Router.Tests;

/// <summary>The capture tap on whole routers over in-memory doubles: what each capture gets, drops, and stopping.</summary>
public class CaptureTests : InMemoryHostsTest
{
    private static readonly MacAddress C1 = MacAddress.FromIPv4(System.Net.IPAddress.Parse("198.18.0.11"));
    private static readonly MacAddress C2 = MacAddress.FromIPv4(System.Net.IPAddress.Parse("198.18.0.12"));
    private static readonly MacAddress C3 = MacAddress.FromIPv4(System.Net.IPAddress.Parse("198.18.0.13"));

    private static List<(byte[] Frame, CaptureRecord Record)> ReadAll(CaptureSession s, int atLeast = 0)
    {
        var list = new List<(byte[], CaptureRecord)>();
        var buf = new byte[s.SnapLength];
        var until = DateTime.UtcNow + Wait;
        do
        {
            while (s.TryRead(buf, out var r)) list.Add((buf[..r.Length], r));
            if (list.Count >= atLeast) break;
            Thread.Sleep(10);
        } while (DateTime.UtcNow < until);
        Thread.Sleep(50);
        while (s.TryRead(buf, out var r)) list.Add((buf[..r.Length], r));
        return list;
    }

    [Fact]
    public void A_capture_sees_what_endpoints_send_as_out_and_what_the_underlay_brings_as_in()
    {
        var (ra, a) = Hosts.Add(1, [2], [Blue], [Endpoint("blue", "c1", "198.18.0.11")]);
        var (_, b) = Hosts.Add(2, [1], [Blue], [Endpoint("blue", "c2", "198.18.0.12")]);
        using var both = ra.StartCapture(new CaptureOptions("blue"));
        using var onlyIn = ra.StartCapture(new CaptureOptions("blue", Direction: CaptureDirection.In));
        Assert.Equal(2, ra.Captures.Count);

        var request = Packets.Udp4(C1, C2, "198.18.0.11", "198.18.0.12", 100);
        a.Tap("c1").Inject(request);
        Assert.NotNull(b.Tap("c2").WaitTake(Wait)); // flooded (C2 unknown) and forwarded
        var answer = Packets.Udp4(C2, C1, "198.18.0.12", "198.18.0.11", 80);
        b.Tap("c2").Inject(answer);
        Assert.Equal(answer, a.Tap("c1").WaitTake(Wait));

        var seen = ReadAll(both, atLeast: 2);
        Assert.Equal(2, seen.Count);
        Assert.Equal(request, seen[0].Frame);
        Assert.Equal(CaptureDirection.Out, seen[0].Record.Direction);
        Assert.Equal(answer, seen[1].Frame);
        Assert.Equal(CaptureDirection.In, seen[1].Record.Direction);
        Assert.True(seen[0].Record.UnixTimeNanoseconds <= seen[1].Record.UnixTimeNanoseconds);
        Assert.InRange(seen[0].Record.UnixTimeNanoseconds / 1_000_000_000, DateTimeOffset.UtcNow.ToUnixTimeSeconds() - 60, DateTimeOffset.UtcNow.ToUnixTimeSeconds() + 1);
        var inOnly = ReadAll(onlyIn, atLeast: 1);
        Assert.Equal([answer], inOnly.Select(x => x.Frame));
        Assert.Equal(0, both.Dropped);
        Assert.Equal(2, both.Captured);
    }

    [Fact]
    public void An_endpoint_capture_takes_its_frames_and_those_for_it_only()
    {
        var (ra, a) = Hosts.Add(1, [2], [Blue], [Endpoint("blue", "c1", "198.18.0.11"), Endpoint("blue", "c3", "198.18.0.13")]);
        var (_, b) = Hosts.Add(2, [1], [Blue], [Endpoint("blue", "c2", "198.18.0.12")]);
        using var c3 = ra.StartCapture(new CaptureOptions("blue", Endpoint: "c3"));

        var c1ToC2 = Packets.Udp4(C1, C2, "198.18.0.11", "198.18.0.12", 10); // not c3's (it is flooded, but unicast to C2)
        a.Tap("c1").Inject(c1ToC2);
        Assert.NotNull(b.Tap("c2").WaitTake(Wait));
        var c1ToC3 = Packets.Udp4(C1, C3, "198.18.0.11", "198.18.0.13", 20);
        a.Tap("c1").Inject(c1ToC3);
        Assert.NotNull(a.Tap("c3").WaitTake(Wait));
        var c3Sends = Packets.Udp4(C3, C2, "198.18.0.13", "198.18.0.12", 30);
        a.Tap("c3").Inject(c3Sends);
        Assert.NotNull(b.Tap("c2").WaitTake(Wait));
        var c2ToC3 = Packets.Udp4(C2, C3, "198.18.0.12", "198.18.0.13", 40);
        b.Tap("c2").Inject(c2ToC3);
        Assert.NotNull(a.Tap("c3").WaitTake(Wait));

        var seen = ReadAll(c3, atLeast: 3);
        Assert.Equal([c1ToC3, c3Sends, c2ToC3], seen.Select(x => x.Frame));
        Assert.Equal([CaptureDirection.In, CaptureDirection.Out, CaptureDirection.In], seen.Select(x => x.Record.Direction));

        var e = Assert.Throws<RouterException>(() => ra.StartCapture(new CaptureOptions("blue", Endpoint: "nope")));
        Assert.Contains("endpoint", e.Message);
        Assert.Contains("nope", e.Message);
        Assert.Contains("network: 'green'", Assert.Throws<RouterException>(() => ra.StartCapture(new CaptureOptions("green"))).Message);
        Assert.Throws<ArgumentOutOfRangeException>(() => ra.StartCapture(new CaptureOptions("blue", RingFrames: 0)));
    }

    [Fact]
    public void A_reader_that_falls_behind_loses_captured_frames_never_forwarded_ones()
    {
        var (ra, a) = Hosts.Add(1, [2], [Blue], [Endpoint("blue", "c1", "198.18.0.11")]);
        var (_, b) = Hosts.Add(2, [1], [Blue], [Endpoint("blue", "c2", "198.18.0.12")]);
        using var slow = ra.StartCapture(new CaptureOptions("blue", Direction: CaptureDirection.Out, RingFrames: 4));
        const int Frames = 50;
        for (int i = 0; i < Frames; i++) a.Tap("c1").Inject(Packets.Udp4(C1, C2, "198.18.0.11", "198.18.0.12", 100 + i));
        for (int i = 0; i < Frames; i++) Assert.NotNull(b.Tap("c2").WaitTake(Wait)); // every frame forwarded
        Assert.True(SpinWait.SpinUntil(() => slow.Captured + slow.Dropped == Frames, Wait), $"{slow.Captured} + {slow.Dropped}");
        Assert.Equal(4, slow.Captured); // the ring's room; nobody read
        Assert.Equal(Frames - 4, slow.Dropped);
        Assert.Equal(Frames - 4, ra.CaptureDrops);
        var kept = ReadAll(slow, atLeast: 4);
        Assert.Equal(4, kept.Count);
        Assert.Equal(Frames, ra.GetStatus().Net("blue").Counters.TxFrames);
    }

    [Fact]
    public void A_stopped_capture_gets_nothing_more_and_leaves_the_data_path_without_captures()
    {
        var (ra, a) = Hosts.Add(1, [2], [Blue], [Endpoint("blue", "c1", "198.18.0.11")]);
        var (_, b) = Hosts.Add(2, [1], [Blue], [Endpoint("blue", "c2", "198.18.0.12")]);
        var s = ra.StartCapture(new CaptureOptions("blue"));
        s.Dispose();
        Assert.True(s.Ended);
        Assert.Empty(ra.Captures);
        a.Tap("c1").Inject(Packets.Udp4(C1, C2, "198.18.0.11", "198.18.0.12", 10));
        Assert.NotNull(b.Tap("c2").WaitTake(Wait));
        Assert.Empty(ReadAll(s));
        Assert.Equal(0, s.Captured);

        var ended = ra.StartCapture(new CaptureOptions("blue"));
        ra.Dispose();
        Assert.True(ended.Ended);
    }

    [Fact]
    public void An_underlay_capture_gets_the_outer_datagrams_behind_ipv4_and_udp_headers()
    {
        var (ra, a) = Hosts.Add(1, [2], [Blue], [Endpoint("blue", "c1", "198.18.0.11")]);
        var (_, b) = Hosts.Add(2, [1], [Blue], [Endpoint("blue", "c2", "198.18.0.12")]);
        using var u = ra.StartCapture(new CaptureOptions(null, Underlay: true));
        Assert.Equal(101, u.LinkType);
        var frame = Packets.Udp4(C1, C2, "198.18.0.11", "198.18.0.12", 100);
        a.Tap("c1").Inject(frame);
        Assert.NotNull(b.Tap("c2").WaitTake(Wait));
        var answer = Packets.Udp4(C2, C1, "198.18.0.12", "198.18.0.11", 60);
        b.Tap("c2").Inject(answer);
        Assert.NotNull(a.Tap("c1").WaitTake(Wait));

        var seen = ReadAll(u, atLeast: 2);
        Assert.Equal(2, seen.Count);
        var sent = new PacketDotNet.IPv4Packet(new PacketDotNet.Utils.ByteArraySegment(seen[0].Frame));
        Assert.Equal(CaptureDirection.Out, seen[0].Record.Direction);
        Assert.Equal("192.0.2.1", sent.SourceAddress.ToString());
        Assert.Equal("192.0.2.2", sent.DestinationAddress.ToString());
        Assert.True(sent.ValidChecksum);
        var udp = sent.Extract<PacketDotNet.UdpPacket>();
        Assert.Equal(4789, udp.DestinationPort);
        Assert.Equal(seen[0].Frame.Length - 20, udp.Length);
        Assert.Equal(4097u, Packets.VniOf(seen[0].Frame[28..]));
        Assert.Equal(frame, seen[0].Frame[36..]);
        var received = new PacketDotNet.IPv4Packet(new PacketDotNet.Utils.ByteArraySegment(seen[1].Frame));
        Assert.Equal(CaptureDirection.In, seen[1].Record.Direction);
        Assert.Equal("192.0.2.2", received.SourceAddress.ToString());
        Assert.Equal(4789, received.Extract<PacketDotNet.UdpPacket>().DestinationPort);
        Assert.Equal(answer, seen[1].Frame[36..]);
    }

    [Fact]
    public void Capturing_and_reading_allocate_nothing_per_frame()
    {
        using var h = new PipelineHarness();
        var session = new CaptureSession(null, new CaptureOptions("blue", RingFrames: 8), h.Network, null, h.State.Workers, h.Network.MaxFrameLength);
        h.Network.Captures = [session];
        var buf = new PacketBuffer();
        var read = new byte[session.SnapLength];
        var frame = PipelineHarness.Frame(h.Ports[0].Mac, h.RemoteMacs[1], 1400);
        long now = Environment.TickCount64;
        void Once()
        {
            PipelineHarness.Load(buf, frame);
            h.Outbound.ProcessFrame(h.Ports[0], buf, Constants.Headroom, frame.Length, now);
            h.Outbound.Flush();
            while (session.TryRead(read, out _)) { }
        }
        for (int i = 0; i < 100; i++) Once();
        long least = long.MaxValue;
        for (int round = 0; round < 3; round++)
        {
            long before = GC.GetAllocatedBytesForCurrentThread();
            for (int i = 0; i < 1000; i++) Once();
            least = Math.Min(least, GC.GetAllocatedBytesForCurrentThread() - before);
        }
        Assert.Equal(0, least);
        Assert.Equal(3100, session.Captured);
        Assert.Equal(0, session.Dropped);
        Assert.True(read.AsSpan(0, frame.Length).SequenceEqual(frame));
    }
}
