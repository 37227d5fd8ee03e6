using UserOverlay.Router.Forwarding;
using UserOverlay.Router.Offload;
using UserOverlay.Router.Testing;
using UserOverlay.Router.Wire;

namespace UserOverlay.Router.Tests;

/// <summary>
/// Hostile input at both edges, at random: valid frames (TCP segments that the coalescer merges, ARP, broadcast,
/// IPv6, VLAN, TCP super-frames) mutated by bit flips, overwritten bytes, truncation and extension, with random
/// offload metadata on the TAP side. Whatever arrives, the pipeline must not throw (in the router an exception
/// costs the rest of a batch and counts as internal_error), must account for every datagram, must never send a
/// frame that came from the underlay back to it, and must still forward a good frame afterwards. Seeded, so a
/// failure reproduces.
/// </summary>
public class FuzzTests
{
    private const int Rounds = 20_000;

    private static byte[] Mutate(Random rnd, byte[] seed)
    {
        byte[] b = seed;
        switch (rnd.Next(5))
        {
            case 0: // flip a few bits
                b = (byte[])seed.Clone();
                for (int i = rnd.Next(1, 9); i > 0; i--) b[rnd.Next(b.Length)] ^= (byte)(1 << rnd.Next(8));
                break;
            case 1: // overwrite a run with random bytes
                b = (byte[])seed.Clone();
                int at = rnd.Next(b.Length), n = Math.Min(b.Length - at, rnd.Next(1, 40));
                rnd.NextBytes(b.AsSpan(at, n));
                break;
            case 2: // cut short
                b = seed[..rnd.Next(seed.Length)];
                break;
            case 3: // extend with garbage
                b = new byte[seed.Length + rnd.Next(1, 2000)];
                seed.CopyTo(b, 0);
                rnd.NextBytes(b.AsSpan(seed.Length));
                break;
            default: // all random
                b = new byte[rnd.Next(0, 1600)];
                rnd.NextBytes(b);
                break;
        }
        return b;
    }

    private static (PipelineHarness H, CountingTap OffloadTap, LocalPort OffloadPort, Pipeline.Inbound Inbound) Setup()
    {
        var h = new PipelineHarness();
        var tap = new CountingTap { SupportsOffload = true, SupportsUdpSegmentation = true };
        var port = new LocalPort(7, h.Network, new EndpointOptions { Network = "blue", Netns = "z", Address = 0xC612_0020, PrefixLength = 24 }, tap);
        h.State.AddPort(port, Environment.TickCount64);
        var co = new Coalescer(() => new PacketBuffer(Constants.GsoBufferSize), 0, new Pipeline.TapWriteQueue());
        return (h, tap, port, new Pipeline.Inbound(h.State, 0, co));
    }

    private static List<byte[]> InnerSeeds(PipelineHarness h, LocalPort offloadPort)
    {
        var seeds = new List<byte[]>
        {
            PipelineHarness.Frame(h.RemoteMacs[0], h.Ports[1].Mac, 1400),                 // unicast to a local port
            PipelineHarness.Frame(h.RemoteMacs[1], MacAddress.Broadcast.Value, 120),       // broadcast
            PipelineHarness.Frame(h.RemoteMacs[2], 0x0200_0000_0999, 200),                 // unknown unicast
            h.ArpRequestFromPort0(0xC612_0064),                                            // an ARP request
        };
        var v6 = PipelineHarness.Frame(h.RemoteMacs[0], h.Ports[0].Mac, 300);
        v6[12] = 0x86; v6[13] = 0xDD; v6[14] = 0x60;
        seeds.Add(v6);
        var vlan = PipelineHarness.Frame(h.RemoteMacs[0], h.Ports[0].Mac, 300);
        vlan[12] = 0x81; vlan[13] = 0x00;
        seeds.Add(vlan);
        // TCP segments of one flow to the offload-capable port: what the coalescer merges.
        var super = OffloadTests.TsoFrame(false, 8 * 1398);
        EthernetFrame.WriteMac(super, offloadPort.Mac);
        EthernetFrame.WriteMac(super.AsSpan(6), h.RemoteMacs[0]);
        TcpSegmenter.TryParse(super, GsoKind.TcpV4, out var layout);
        var seg = new byte[2000];
        for (int i = 0; i < 8; i++)
            seeds.Add(seg[..TcpSegmenter.WriteSegment(super, layout, 1398, i, seg)]);
        // UDP datagrams of one flow to the same port: what the coalescer merges into UDP super-frames.
        for (int i = 0; i < 6; i++)
            seeds.Add(Packets.Udp4(new MacAddress(h.RemoteMacs[0]), new MacAddress(offloadPort.Mac), "198.18.0.100", "198.18.0.32", payloadLength: i < 5 ? 64 : 30));
        return seeds;
    }

    [Fact]
    public void Mutated_vxlan_datagrams_never_throw_and_each_is_delivered_or_counted()
    {
        var (h, offloadTap, offloadPort, inbound) = Setup();
        using var _ = h;
        var rnd = new Random(20261126);
        var seeds = InnerSeeds(h, offloadPort);
        var buf = new PacketBuffer(Constants.GsoBufferSize);
        var stranger = new VtepEndpoint(0xC000_0242, 4789);
        long now = Environment.TickCount64;

        for (int i = 0; i < Rounds; i++)
        {
            byte[] inner = seeds[rnd.Next(seeds.Count)];
            var vx = new byte[VxlanHeader.Length + inner.Length];
            VxlanHeader.Write(vx, rnd.Next(8) == 0 ? (uint)rnd.Next(1 << 24) : PipelineHarness.Vni);
            inner.CopyTo(vx, VxlanHeader.Length);
            byte[] datagram = rnd.Next(4) == 0 ? vx : Mutate(rnd, vx); // a quarter arrive intact
            int offset = Constants.Headroom - VxlanHeader.Length;
            datagram.CopyTo(buf.Span[offset..]);
            var d = new UnderlayDatagram
            {
                Buffer = buf,
                Offset = offset,
                Length = datagram.Length,
                Peer = rnd.Next(16) == 0 ? stranger : h.Peers[rnd.Next(h.Peers.Length)],
                Truncated = rnd.Next(64) == 0,
            };
            inbound.ProcessDatagram(ref d, now);
            if (rnd.Next(8) == 0) inbound.FlushCoalesced();
        }
        inbound.FlushCoalesced();

        // Every datagram was either refused with a router-wide reason or entered its network (RxFrames), where
        // it was delivered, flooded or dropped with a per-network reason.
        long globalDrops = h.State.Global[0].Drops.Sum();
        Assert.Equal(Rounds, globalDrops + h.Network.Counters[0].RxFrames);
        Assert.Equal(0, h.State.Global[0].Drops[(int)DropReason.InternalError]);
        Assert.Equal(0, h.Underlay.Datagrams); // nothing from the underlay went back to it
        Assert.True(h.Network.Counters[0].DeliveredFrames > Rounds / 8, "intact datagrams were delivered");

        // And the next good frame still gets through.
        long before = ((CountingTap)h.Ports[1].Tap).Frames;
        var good = PipelineHarness.Received(buf, h.Peers[0], PipelineHarness.Vni, PipelineHarness.Frame(h.RemoteMacs[0], h.Ports[1].Mac, 1400));
        inbound.ProcessDatagram(ref good, now);
        Assert.Equal(before + 1, ((CountingTap)h.Ports[1].Tap).Frames);
        Assert.True(offloadTap.Frames > 0, "the coalescing path was exercised");
        Assert.True(offloadTap.UdpOffloadWrites > 0, "UDP super-frames were written");
    }

    [Fact]
    public void Mutated_frames_from_endpoints_with_random_offload_metadata_never_throw()
    {
        var (h, _, offloadPort, _) = Setup();
        using var _h = h;
        var rnd = new Random(4789);
        var buf = new PacketBuffer(Constants.GsoBufferSize);
        long now = Environment.TickCount64;
        var super4 = OffloadTests.TsoFrame(false, 20 * 1398);
        var super6 = OffloadTests.TsoFrame(true, 20 * 1378);
        foreach (var s in new[] { super4, super6 })
        {
            EthernetFrame.WriteMac(s, h.RemoteMacs[1]);
            EthernetFrame.WriteMac(s.AsSpan(6), h.Ports[0].Mac);
        }
        var seeds = new List<byte[]>
        {
            super4, super6,
            PipelineHarness.Frame(h.Ports[0].Mac, h.RemoteMacs[1], 1400),            // unicast to a remote VTEP
            PipelineHarness.Frame(h.Ports[0].Mac, h.Ports[1].Mac, 600),              // to the other local port
            PipelineHarness.Frame(h.Ports[0].Mac, offloadPort.Mac, 600),             // to the offload-capable port
            PipelineHarness.Frame(h.Ports[0].Mac, MacAddress.Broadcast.Value, 100),  // broadcast
            h.ArpRequestFromPort0(0xC612_0065),                                      // answered by proxy ARP
        };

        long sentBefore = h.Underlay.Datagrams;
        for (int i = 0; i < Rounds; i++)
        {
            byte[] frame = seeds[rnd.Next(seeds.Count)];
            if (rnd.Next(4) != 0) frame = Mutate(rnd, frame);
            if (frame.Length > Constants.GsoBufferSize - Constants.Headroom - Constants.Tailroom) continue;
            PipelineHarness.Load(buf, frame);
            var info = rnd.Next(3) switch
            {
                0 => default(OffloadInfo),
                1 => new OffloadInfo // plausible TSO metadata
                {
                    Gso = frame == super6 || rnd.Next(2) == 0 ? GsoKind.TcpV6 : GsoKind.TcpV4,
                    GsoSize = (ushort)rnd.Next(0, 2000),
                    NeedsChecksum = true,
                    HeaderLength = (ushort)rnd.Next(0, 120),
                    CsumStart = (ushort)rnd.Next(0, 80),
                    CsumOffset = 16,
                },
                _ => new OffloadInfo // anything at all
                {
                    Gso = rnd.Next(3) switch { 0 => GsoKind.None, 1 => GsoKind.TcpV4, _ => GsoKind.TcpV6 },
                    GsoSize = (ushort)rnd.Next(65536),
                    NeedsChecksum = rnd.Next(2) == 0,
                    HeaderLength = (ushort)rnd.Next(65536),
                    CsumStart = (ushort)rnd.Next(65536),
                    CsumOffset = (ushort)rnd.Next(65536),
                },
            };
            h.Outbound.ProcessTapFrame(h.Ports[0], buf, Constants.Headroom, frame.Length, info, now);
            if (rnd.Next(8) == 0) h.Outbound.Flush();
        }
        h.Outbound.Flush();
        Assert.Equal(0, h.State.Global[0].Drops[(int)DropReason.InternalError]);
        Assert.True(h.Network.Counters[0].Drops[(int)DropReason.BadOffload] > 0, "hostile offload metadata was seen and refused");
        Assert.True(h.Underlay.Datagrams > sentBefore, "intact frames were forwarded");

        // The endpoint's next good frame still leaves.
        long before = h.Underlay.Datagrams;
        var good = PipelineHarness.Frame(h.Ports[0].Mac, h.RemoteMacs[1], 1400);
        PipelineHarness.Load(buf, good);
        h.Outbound.ProcessFrame(h.Ports[0], buf, Constants.Headroom, good.Length, now);
        h.Outbound.Flush();
        Assert.Equal(before + 1, h.Underlay.Datagrams);
    }

    [Fact]
    public void Mutated_esp_packets_never_deliver_and_are_each_counted()
    {
        using var h = new PipelineHarness(encrypted: true);
        var rnd = new Random(50);
        var buf = new PacketBuffer(Constants.GsoBufferSize);
        long now = Environment.TickCount64;
        var inner = PipelineHarness.Frame(h.RemoteMacs[0], h.Ports[1].Mac, 600);
        var tap = (CountingTap)h.Ports[1].Tap;
        int intact = 0, altered = 0;
        for (int i = 0; i < Rounds / 4; i++)
        {
            UnderlayDatagram d = h.ReceivedEsp(buf, inner); // a fresh, valid packet (next sequence number)
            if (rnd.Next(4) == 0)
            {
                intact++;
            }
            else
            {
                byte[] sealedPacket = buf.Span.Slice(d.Offset, d.Length).ToArray();
                byte[] bad;
                do bad = Mutate(rnd, sealedPacket); while (bad.AsSpan().SequenceEqual(sealedPacket));
                if (bad.Length > buf.Capacity) continue;
                altered++;
                bad.CopyTo(buf.Span);
                d.Offset = 0;
                d.Length = bad.Length;
            }
            h.Inbound.ProcessEsp(ref d, now);
        }
        // Only the intact packets reached the endpoint; every altered one was refused with a reason.
        Assert.Equal(intact, tap.Frames);
        Assert.Equal(altered, h.State.Global[0].Drops.Sum());
        Assert.True(intact > 0 && altered > 0);
        Assert.Equal(intact, h.Network.Counters[0].RxFrames);
        Assert.Equal(0, h.EspUnderlay!.Datagrams);
        Assert.Equal(0, h.Underlay.Datagrams);
    }
}
