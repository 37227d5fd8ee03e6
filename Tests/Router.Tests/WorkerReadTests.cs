using UserOverlay.Router.Forwarding;
using UserOverlay.Router.Offload;
using UserOverlay.Router.Testing;

namespace UserOverlay.Router.Tests;

/// <summary>The TAP edge as a pipeline worker uses it, on the in-memory doubles: the same read and write path as a kernel TAP.</summary>
public class WorkerReadTests
{
    [Fact]
    public void A_device_without_its_own_read_policy_reads_once_per_call_and_reports_more_when_the_batch_filled()
    {
        using var ch = new ChannelTap();
        for (int i = 0; i < 3; i++) ch.Inject(PipelineHarness.Frame(0x0200_0000_0001, 0x0200_0000_0002 + (ulong)i, 60));
        ITapDevice device = ch; // the worker holds the interface: the default read
        var bufs = new[] { new PacketBuffer(), new PacketBuffer() };
        var sizes = new int[2];
        var offloads = new OffloadInfo[2];

        Assert.Equal(2, device.Read(new TapReadContext(1), bufs, sizes, offloads, Constants.Headroom, out bool more));
        Assert.True(more); // the batch filled: ask again this round
        Assert.Equal(0x0200_0000_0003UL, Wire.EthernetFrame.Destination(bufs[1].Span.Slice(Constants.Headroom, sizes[1])));
        Assert.Equal(1, device.Read(new TapReadContext(1), bufs, sizes, offloads, Constants.Headroom, out more));
        Assert.False(more); // short: drained
        Assert.Equal(0, device.Read(new TapReadContext(2), bufs, sizes, offloads, Constants.Headroom, out more));
        Assert.False(more);
    }

    [Fact]
    public void A_double_is_not_ring_writable_so_its_frames_are_written_at_once_even_with_a_ring_attached()
    {
        using var h = new PipelineHarness();
        var ch = new ChannelTap("eth9");
        var port = new LocalPort(9, h.Network, new EndpointOptions { Network = "blue", Netns = "x", Address = 0xC612_0063, PrefixLength = 24 }, ch);
        Assert.Equal(-1, port.RingFd);
        using var writes = new Pipeline.TapWriteQueue();
        var c = new TrafficCounters();
        writes.Deliver(port, PipelineHarness.Frame(h.Ports[0].Mac, port.Mac, 60), c);
        Assert.Equal(1, ch.WrittenCount); // no Flush needed
        Assert.Equal(1, c.DeliveredFrames);
        ch.AcceptWrites = false;
        writes.Deliver(port, PipelineHarness.Frame(h.Ports[0].Mac, port.Mac, 60), c);
        Assert.Equal(1, c.Drops[(int)DropReason.EndpointWriteFailed]);
        ch.Dispose();
    }
}
