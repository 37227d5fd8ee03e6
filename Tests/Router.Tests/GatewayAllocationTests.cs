using System.Buffers.Binary;
using UserOverlay.Router.Testing;
using UserOverlay.Router.Wire;

namespace UserOverlay.Router.Tests;

/// <summary>The gateway's answers are on the data path too: an echo reply and a unicast ARP reply allocate nothing.</summary>
public class GatewayAllocationTests
{
    private const uint GatewayIp = 0xC612_0001; // 198.18.0.1

    private static long Allocated(Action body, int iterations)
    {
        for (int i = 0; i < 50; i++) body();
        long least = long.MaxValue;
        for (int round = 0; round < 3 && least != 0; round++)
        {
            long before = GC.GetAllocatedBytesForCurrentThread();
            for (int i = 0; i < iterations; i++) body();
            least = Math.Min(least, GC.GetAllocatedBytesForCurrentThread() - before);
        }
        return least;
    }

    [Fact]
    public void An_echo_request_and_a_unicast_arp_to_the_gateway_are_answered_without_allocating()
    {
        using var h = new PipelineHarness(gateway: GatewayIp);
        ulong gwMac = Constants.GatewayMac(PipelineHarness.Vni).Value;
        var port = h.Ports[0];
        var tap = (CountingTap)port.Tap;

        // ICMP echo request 198.18.0.11 → 198.18.0.1 with 56 bytes of data, checksums filled in.
        var echo = new byte[14 + 20 + 8 + 56];
        EthernetFrame.WriteMac(echo, gwMac);
        EthernetFrame.WriteMac(echo.AsSpan(6), port.Mac);
        echo[12] = 0x08;
        echo[14] = 0x45;
        BinaryPrimitives.WriteUInt16BigEndian(echo.AsSpan(16), 20 + 8 + 56);
        echo[22] = 64;
        echo[23] = 1;
        BinaryPrimitives.WriteUInt32BigEndian(echo.AsSpan(26), port.Address);
        BinaryPrimitives.WriteUInt32BigEndian(echo.AsSpan(30), GatewayIp);
        BinaryPrimitives.WriteUInt16BigEndian(echo.AsSpan(24), Offload.Checksum.Complement(Offload.Checksum.Sum(echo.AsSpan(14, 20))));
        echo[34] = 8;
        for (int i = 42; i < echo.Length; i++) echo[i] = (byte)i;
        BinaryPrimitives.WriteUInt16BigEndian(echo.AsSpan(36), Offload.Checksum.Complement(Offload.Checksum.Sum(echo.AsSpan(34))));
        var arp = h.ArpRequestFromPort0(GatewayIp);
        EthernetFrame.WriteMac(arp, gwMac); // unicast to the gateway, as the kernel's probe

        var buf = new PacketBuffer();
        long now = Environment.TickCount64;
        long before = tap.Frames;
        long alloc = Allocated(() =>
        {
            PipelineHarness.Load(buf, echo);
            h.Outbound.ProcessFrame(port, buf, Constants.Headroom, echo.Length, now);
            PipelineHarness.Load(buf, arp);
            h.Outbound.ProcessFrame(port, buf, Constants.Headroom, arp.Length, now);
            h.Outbound.Flush();
        }, 1000);
        Assert.Equal(0, alloc);
        long answered = tap.Frames - before;
        Assert.True(answered >= 2 * 1050, $"{answered} replies"); // both answered every time
        Assert.Equal(answered, h.Network.Counters[0].GatewayReplies);
        Assert.Equal(0, h.Underlay.Datagrams); // nothing left the host
    }
}
