using System.Buffers.Binary;
using System.Net;
using PacketDotNet;
using UserOverlay.Router.Forwarding;
using UserOverlay.Router.Offload;
using UserOverlay.Router.Testing;

namespace UserOverlay.Router.Tests;

/// <summary>TAP offloads: the checksum, TSO segmentation checked by PacketDotNet, and coalescing checked by round trip.</summary>
public class OffloadTests
{
    private static readonly MacAddress A = MacAddress.Parse("02:00:c6:12:00:0b"), B = MacAddress.Parse("02:00:c6:12:00:0c");

    private static ushort NaiveChecksum(byte[] data)
    {
        uint sum = 0;
        for (int i = 0; i + 1 < data.Length; i += 2) sum += (uint)(data[i] << 8 | data[i + 1]);
        if (data.Length % 2 == 1) sum += (uint)(data[^1] << 8);
        while (sum >> 16 != 0) sum = (sum & 0xFFFF) + (sum >> 16);
        return (ushort)~sum;
    }

    [Fact]
    public void Checksum_matches_the_RFC_1071_reference_for_every_length()
    {
        var rnd = new Random(5);
        for (int len = 0; len < 300; len++)
        {
            var data = new byte[len];
            rnd.NextBytes(data);
            Assert.Equal(NaiveChecksum(data), Checksum.Complement(Checksum.Sum(data)));
            // Split sums (even first part) agree with the whole.
            int cut = len / 2 & ~1;
            Assert.Equal(NaiveChecksum(data), Checksum.Complement(Checksum.Sum(data.AsSpan(cut), Checksum.Sum(data.AsSpan(0, cut)))));
        }
        var big = new byte[65535];
        rnd.NextBytes(big);
        Assert.Equal(NaiveChecksum(big), Checksum.Complement(Checksum.Sum(big)));
    }

    /// <summary>A TCP super-frame as an offload-capable TAP hands it over: one header, a large payload, checksum partial.</summary>
    internal static byte[] TsoFrame(bool ipv6, int payloadLength, uint seq = 1000, bool fin = false, ushort srcPort = 40000)
    {
        var payload = Enumerable.Range(0, payloadLength).Select(i => (byte)(i * 7 + 3)).ToArray();
        var tcp = new TcpPacket(srcPort, 5201) { SequenceNumber = seq, AcknowledgmentNumber = 77, Acknowledgment = true, Push = true, Finished = fin, WindowSize = 500, PayloadData = payload };
        Packet ip = ipv6
            ? new IPv6Packet(IPAddress.Parse("fd00::11"), IPAddress.Parse("fd00::12")) { PayloadPacket = tcp, HopLimit = 64 }
            : new IPv4Packet(IPAddress.Parse("198.18.0.11"), IPAddress.Parse("198.18.0.12")) { PayloadPacket = tcp, TimeToLive = 64, Id = 4242 };
        var eth = new EthernetPacket(Packets.Phys(A), Packets.Phys(B), ipv6 ? EthernetType.IPv6 : EthernetType.IPv4) { PayloadPacket = ip };
        var bytes = eth.Bytes;
        if (!ipv6) // PacketDotNet leaves the IPv4 total length of an over-long packet as it is; a TAP hands the true length
            BinaryPrimitives.WriteUInt16BigEndian(bytes.AsSpan(16), (ushort)(bytes.Length - 14));
        else
            BinaryPrimitives.WriteUInt16BigEndian(bytes.AsSpan(18), (ushort)(bytes.Length - 54));
        return bytes;
    }

    private static OffloadInfo Tso(bool ipv6, ushort mss) => new()
    {
        Gso = ipv6 ? GsoKind.TcpV6 : GsoKind.TcpV4,
        GsoSize = mss,
        NeedsChecksum = true,
        HeaderLength = (ushort)(14 + (ipv6 ? 40 : 20) + 20),
        CsumStart = (ushort)(14 + (ipv6 ? 40 : 20)),
        CsumOffset = 16,
    };

    [Theory]
    [InlineData(false, 20000, 1398)]
    [InlineData(false, 1398, 1398)]  // exactly one segment
    [InlineData(false, 65000 - 54, 1448)]
    [InlineData(true, 30000, 1378)]
    public void Tso_super_frames_are_cut_into_valid_segments(bool ipv6, int payloadLength, int mss)
    {
        var super = TsoFrame(ipv6, payloadLength, fin: true);
        Assert.True(TcpSegmenter.TryParse(super, ipv6 ? GsoKind.TcpV6 : GsoKind.TcpV4, out var layout));
        int n = TcpSegmenter.SegmentCount(super.Length, layout, mss);
        Assert.Equal((payloadLength + mss - 1) / mss, n);
        var payload = new List<byte>();
        var buf = new byte[mss + 200];
        for (int i = 0; i < n; i++)
        {
            int len = TcpSegmenter.WriteSegment(super, layout, mss, i, buf);
            var eth = Packets.Parse(buf[..len]);
            var tcp = eth.Extract<TcpPacket>();
            Assert.True(tcp.ValidChecksum, $"segment {i}: TCP checksum");
            if (!ipv6)
            {
                var ip4 = eth.Extract<IPv4Packet>();
                Assert.True(ip4.ValidIPChecksum, $"segment {i}: IPv4 header checksum");
                Assert.Equal(len - 14, ip4.TotalLength);
                Assert.Equal(4242 + i, ip4.Id);
            }
            else Assert.Equal(len - 54, eth.Extract<IPv6Packet>().PayloadLength);
            Assert.Equal(1000u + (uint)(i * mss), tcp.SequenceNumber);
            Assert.Equal(i == n - 1, tcp.Push);
            Assert.Equal(i == n - 1, tcp.Finished);
            Assert.True(tcp.Acknowledgment);
            payload.AddRange(tcp.PayloadData);
        }
        Assert.Equal(super[layout.HeaderLength..], payload.ToArray());
    }

    [Fact]
    public void A_partial_checksum_is_completed()
    {
        var frame = Packets.Udp4(A, B, "198.18.0.11", "198.18.0.12", 333);
        int start = 14 + 20;
        // What a TAP with TUN_F_CSUM hands over: the field holds the pseudo-header sum.
        ulong pseudo = Checksum.PseudoHeaderV4(frame.AsSpan(26, 4), frame.AsSpan(30, 4), 17, frame.Length - start);
        BinaryPrimitives.WriteUInt16BigEndian(frame.AsSpan(start + 6), Checksum.Fold(pseudo));
        Assert.False(Packets.Parse(frame).Extract<UdpPacket>().ValidChecksum);
        Assert.True(TcpSegmenter.CompleteChecksum(frame, start, 6));
        Assert.True(Packets.Parse(frame).Extract<UdpPacket>().ValidChecksum);
        Assert.False(TcpSegmenter.CompleteChecksum(frame, 4000, 6)); // offsets past the frame are refused
    }

    private static (LocalPort Port, CountingTap Tap, ChannelTap Channel) OffloadPort(PipelineHarness h)
    {
        var ch = new ChannelTap("eth9", offload: true);
        var port = new LocalPort(9, h.Network, new EndpointOptions { Network = "blue", Netns = "x", Address = 0xC612_0063, PrefixLength = 24 }, ch);
        return (port, (CountingTap)h.Ports[0].Tap, ch);
    }

    private static List<byte[]> Segments(byte[] super, bool ipv6, int mss)
    {
        TcpSegmenter.TryParse(super, ipv6 ? GsoKind.TcpV6 : GsoKind.TcpV4, out var l);
        var list = new List<byte[]>();
        for (int i = 0; i < TcpSegmenter.SegmentCount(super.Length, l, mss); i++)
        {
            var b = new byte[mss + 200];
            list.Add(b[..TcpSegmenter.WriteSegment(super, l, mss, i, b)]);
        }
        return list;
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void Coalescing_then_segmenting_gives_back_the_same_segments(bool ipv6)
    {
        using var h = new PipelineHarness();
        var (port, _, ch) = OffloadPort(h);
        var c = new TrafficCounters();
        var co = new Coalescer(() => new PacketBuffer(Constants.GsoBufferSize), 0, new Pipeline.TapWriteQueue());
        var original = TsoFrame(ipv6, 40 * 1400 - 100);
        var segs = Segments(original, ipv6, 1400);
        foreach (var s in segs) Assert.True(co.Offer(port, s, c));
        co.Flush();
        var (frame, info) = Assert.Single(ch.OffloadWrites);
        Assert.Equal(ipv6 ? GsoKind.TcpV6 : GsoKind.TcpV4, info.Gso);
        Assert.Equal(1400, info.GsoSize);
        Assert.True(info.NeedsChecksum);
        Assert.Equal(14 + (ipv6 ? 40 : 20), info.CsumStart);
        Assert.Equal(original.Length, frame.Length);
        // The kernel would segment it exactly as the sender did.
        var again = Segments(frame, ipv6, 1400);
        Assert.Equal(segs.Count, again.Count);
        for (int i = 0; i < segs.Count; i++) Assert.Equal(segs[i], again[i]);
    }

    [Fact]
    public void Only_exact_continuations_coalesce_and_order_is_kept()
    {
        using var h = new PipelineHarness();
        var (port, _, ch) = OffloadPort(h);
        var c = new TrafficCounters();
        var co = new Coalescer(() => new PacketBuffer(Constants.GsoBufferSize), 0, new Pipeline.TapWriteQueue());
        var flowA = Segments(TsoFrame(false, 5 * 1000, seq: 1), false, 1000);
        var flowB = Segments(TsoFrame(false, 3 * 1000, seq: 9000, srcPort: 40001), false, 1000);
        // Interleaved flows: two super-frames.
        for (int i = 0; i < 5; i++) { Assert.True(co.Offer(port, flowA[i], c)); if (i < 3) Assert.True(co.Offer(port, flowB[i], c)); }
        co.Flush();
        Assert.Equal(2, ch.OffloadWrites.Count);

        // A gap (segment 2 missing): what came before is written, the out-of-order one alone.
        while (ch.TryTake(out _)) { }
        var gap = Segments(TsoFrame(false, 5 * 1000, seq: 50_000, srcPort: 40002), false, 1000);
        Assert.True(co.Offer(port, gap[0], c));
        Assert.True(co.Offer(port, gap[1], c));
        Assert.False(co.Offer(port, gap[3], c)); // not the continuation: caller writes it; 0–1 were flushed first
        var written = new List<byte[]>();
        while (ch.TryTake(out var f)) written.Add(f);
        Assert.Single(written); // the super-frame of 0–1 (the caller writes segment 3 itself)
        Assert.Equal(14 + 20 + 20 + 2000, written[0].Length);

        // A corrupted segment (its checksum fails) is never merged: the super-frame's checksum would be trusted.
        while (ch.TryTake(out _)) { }
        var cor = Segments(TsoFrame(false, 3 * 1000, seq: 80_000, srcPort: 40005), false, 1000);
        cor[1][^1] ^= 0x5A;
        Assert.True(co.Offer(port, cor[0], c));
        Assert.False(co.Offer(port, cor[1], c)); // written alone by the caller; segment 0 was flushed first
        Assert.False(co.HasPending);

        // A corrupted first segment is found when the second joins: it goes alone, the second starts afresh.
        while (ch.TryTake(out _)) { }
        int offloadsBefore = ch.OffloadWrites.Count;
        var cf = Segments(TsoFrame(false, 3 * 1000, seq: 90_000, srcPort: 40006), false, 1000);
        cf[0][^1] ^= 0x5A;
        Assert.True(co.Offer(port, cf[0], c));
        Assert.True(co.Offer(port, cf[1], c));
        Assert.True(co.Offer(port, cf[2], c));
        co.Flush();
        var sent = new List<byte[]>();
        while (ch.TryTake(out var f)) sent.Add(f);
        Assert.Equal(2, sent.Count);
        Assert.Equal(cf[0], sent[0]);                              // exactly as received, first
        Assert.Equal(14 + 20 + 20 + 2000, sent[1].Length);         // then 1–2 merged
        Assert.Equal(offloadsBefore + 1, ch.OffloadWrites.Count);

        // A FIN is never coalesced, and first flushes the port.
        var fin = Segments(TsoFrame(false, 1000, seq: 60_000, fin: true, srcPort: 40003), false, 1000)[0];
        Assert.True(co.Offer(port, Segments(TsoFrame(false, 1000, seq: 70_000, srcPort: 40004), false, 1000)[0], c));
        Assert.False(co.Offer(port, fin, c));
        Assert.False(co.HasPending);
    }

    /// <summary>UDP/IPv4 or IPv6 datagrams of one flow with valid checksums (PacketDotNet), payload bytes tagged by <paramref name="tag"/>.</summary>
    private static List<byte[]> Datagrams(bool ipv6, int count, int payload, ushort srcPort = 40000, byte tag = 0)
    {
        var list = new List<byte[]>();
        for (int i = 0; i < count; i++)
        {
            var udp = new UdpPacket(srcPort, 5201) { PayloadData = Enumerable.Range(0, payload).Select(j => (byte)(tag + i * 7 + j)).ToArray() };
            Packet ip = ipv6
                ? new IPv6Packet(IPAddress.Parse("fd00::11"), IPAddress.Parse("fd00::12")) { PayloadPacket = udp, HopLimit = 64 }
                : new IPv4Packet(IPAddress.Parse("198.18.0.11"), IPAddress.Parse("198.18.0.12")) { PayloadPacket = udp, TimeToLive = 64, Id = (ushort)(100 + i) };
            var eth = new EthernetPacket(Packets.Phys(A), Packets.Phys(B), ipv6 ? EthernetType.IPv6 : EthernetType.IPv4) { PayloadPacket = ip };
            udp.UpdateCalculatedValues();
            ip.UpdateCalculatedValues();
            if (ip is IPv4Packet v4) v4.UpdateIPChecksum();
            udp.UpdateUdpChecksum();
            list.Add(eth.Bytes);
        }
        return list;
    }

    /// <summary>What the kernel does with a UDP super-frame (__udp_gso_segment): the same headers, payload cut at GsoSize.</summary>
    private static List<byte[]> CutUdp(byte[] super, OffloadInfo info)
    {
        int hdr = info.HeaderLength, n = (super.Length - hdr + info.GsoSize - 1) / info.GsoSize;
        var list = new List<byte[]>();
        for (int i = 0; i < n; i++)
        {
            int len = Math.Min(info.GsoSize, super.Length - hdr - i * info.GsoSize);
            list.Add(super.AsSpan(hdr + i * info.GsoSize, len).ToArray());
        }
        return list;
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void Udp_datagrams_of_one_flow_become_one_super_frame_the_kernel_cuts_back(bool ipv6)
    {
        using var h = new PipelineHarness();
        var ch = new ChannelTap("eth9", offload: true) { SupportsUdpSegmentation = true };
        var port = new LocalPort(9, h.Network, new EndpointOptions { Network = "blue", Netns = "x", Address = 0xC612_0063, PrefixLength = 24 }, ch);
        var c = new TrafficCounters();
        var co = new Coalescer(() => new PacketBuffer(Constants.GsoBufferSize), 0, new Pipeline.TapWriteQueue());
        var dgrams = Datagrams(ipv6, 10, 64);
        dgrams.Add(Datagrams(ipv6, 1, 40, tag: 99)[0]); // a shorter last one closes the super-frame
        foreach (var d in dgrams) Assert.True(co.Offer(port, d, c));
        co.Flush();
        var (frame, info) = Assert.Single(ch.OffloadWrites);
        int l3 = ipv6 ? 40 : 20;
        Assert.Equal(GsoKind.UdpL4, info.Gso);
        Assert.Equal(64, info.GsoSize);
        Assert.True(info.NeedsChecksum);
        Assert.Equal(14 + l3, info.CsumStart);
        Assert.Equal(6, info.CsumOffset);
        Assert.Equal(14 + l3 + 8, info.HeaderLength);
        int l4 = 8 + 10 * 64 + 40;
        Assert.Equal(14 + l3 + l4, frame.Length);
        Assert.Equal(l4, BinaryPrimitives.ReadUInt16BigEndian(frame.AsSpan(14 + l3 + 4)));
        Assert.Equal(ipv6 ? l4 : l3 + l4, BinaryPrimitives.ReadUInt16BigEndian(frame.AsSpan(ipv6 ? 18 : 16)));
        // The partial checksum is the pseudo-header sum over the whole (the kernel swaps the length per segment).
        ulong pseudo = ipv6
            ? Checksum.PseudoHeaderV6(frame.AsSpan(22, 16), frame.AsSpan(38, 16), 17, l4)
            : Checksum.PseudoHeaderV4(frame.AsSpan(26, 4), frame.AsSpan(30, 4), 17, l4);
        Assert.Equal(Checksum.Fold(pseudo), BinaryPrimitives.ReadUInt16BigEndian(frame.AsSpan(14 + l3 + 6)));
        if (!ipv6) Assert.Equal(0, Checksum.Complement(Checksum.Sum(frame.AsSpan(14, 20)))); // the IPv4 header checksum is valid
        // Cut as the kernel cuts it: the original payloads, in order.
        var payloads = CutUdp(frame, info);
        Assert.Equal(dgrams.Count, payloads.Count);
        for (int i = 0; i < dgrams.Count; i++) Assert.Equal(dgrams[i].AsSpan(14 + l3 + 8).ToArray(), payloads[i]);
    }

    [Fact]
    public void Udp_is_coalesced_only_where_it_may_be_and_never_reordered()
    {
        using var h = new PipelineHarness();
        var c = new TrafficCounters();
        var co = new Coalescer(() => new PacketBuffer(Constants.GsoBufferSize), 0, new Pipeline.TapWriteQueue());
        var plain = new ChannelTap("eth8", offload: true); // TSO but no USO: UDP goes one by one
        var plainPort = new LocalPort(8, h.Network, new EndpointOptions { Network = "blue", Netns = "x", Address = 0xC612_0062, PrefixLength = 24 }, plain);
        foreach (var d in Datagrams(false, 3, 64)) Assert.False(co.Offer(plainPort, d, c));

        var ch = new ChannelTap("eth9", offload: true) { SupportsUdpSegmentation = true };
        var port = new LocalPort(9, h.Network, new EndpointOptions { Network = "blue", Netns = "x", Address = 0xC612_0063, PrefixLength = 24 }, ch);

        // A corrupted datagram is not merged (its checksum would be trusted): the flow so far is written first.
        var a = Datagrams(false, 3, 64);
        var bad = (byte[])a[2].Clone();
        bad[^1] ^= 0xFF;
        Assert.True(co.Offer(port, a[0], c));
        Assert.True(co.Offer(port, a[1], c));
        Assert.False(co.Offer(port, bad, c));
        Assert.Single(ch.OffloadWrites);
        Assert.False(co.HasPending);

        // Two flows interleaved: two super-frames. A longer datagram than the first ends one and starts the next.
        while (ch.TryTake(out _)) { }
        var f1 = Datagrams(false, 4, 64, srcPort: 41000);
        var f2 = Datagrams(false, 4, 64, srcPort: 42000);
        for (int i = 0; i < 4; i++) { Assert.True(co.Offer(port, f1[i], c)); Assert.True(co.Offer(port, f2[i], c)); }
        var longer = Datagrams(false, 1, 200, srcPort: 41000, tag: 50)[0];
        Assert.True(co.Offer(port, longer, c)); // flow 1's four go out now, then this one waits for more
        co.Flush();
        var writes = new List<byte[]>();
        while (ch.TryTake(out var f)) writes.Add(f);
        Assert.Equal(3, writes.Count);
        Assert.Equal(14 + 20 + 8 + 4 * 64, writes[0].Length); // flow 1 first: it was complete before the longer one came
        Assert.Equal(longer.Length, writes.Single(w => w.Length == longer.Length).Length);
        Assert.Equal(longer, writes.Single(w => w.Length == longer.Length)); // a lone datagram goes out exactly as received

        // More than MaxSegments datagrams of one flow: written in order, in full super-frames.
        var many = Datagrams(false, Coalescer.MaxSegments + 5, 32, srcPort: 43000);
        foreach (var d in many) Assert.True(co.Offer(port, d, c));
        co.Flush();
        writes.Clear();
        while (ch.TryTake(out var f)) writes.Add(f);
        Assert.Equal(2, writes.Count);
        Assert.Equal(14 + 20 + 8 + Coalescer.MaxSegments * 32, writes[0].Length);
        Assert.Equal(many[^1].AsSpan(42).ToArray(), writes[1].AsSpan(writes[1].Length - 32).ToArray());
    }

    [Fact]
    public void A_super_frame_from_a_tap_leaves_as_segments_and_arrives_coalesced()
    {
        using var hosts = new InMemoryHosts();
        var offload = new InMemoryPlatform(hosts.Underlay);
        // Two in-memory hosts whose TAPs are offload-capable ChannelTaps.
        var a = OffloadHost(hosts, 1, 2);
        var b = OffloadHost(hosts, 2, 1);
        var super = TsoFrame(false, 30 * 1398, seq: 5);
        a.Platform.Tap("c1").Inject(super, Tso(false, 1398));
        var received = new List<byte>();
        var deadline = DateTime.UtcNow.AddSeconds(5);
        int headers = 14 + 20 + 20;
        while (received.Count < 30 * 1398 && DateTime.UtcNow < deadline)
        {
            var f = b.Platform.Tap("c2").WaitTake(TimeSpan.FromMilliseconds(200));
            if (f is null) continue;
            received.AddRange(f[headers..]);
        }
        Assert.Equal(super[headers..], received.ToArray());
        var sent = a.Platform.Underlay!.Sent.ToArray();
        Assert.Equal(30, sent.Length); // 30 VXLAN datagrams on the wire, each a plain segment
        Assert.All(sent, d => Assert.True(d.Payload.Length <= 8 + 14 + 1450));
        // Coalesced on arrival — but only segments that land in one receive round merge, and on a loaded
        // machine the receiving worker may wake for each datagram alone. So: more super-frames until one
        // merges (an ordinary run merges the first; a coalescer that never merges fails all ten).
        var c2 = b.Platform.Tap("c2");
        uint seq = 5 + 30 * 1398;
        for (int attempt = 0; c2.OffloadWrites.Count == 0 && attempt < 10; attempt++, seq += 30 * 1398)
        {
            var more = TsoFrame(false, 30 * 1398, seq: seq);
            a.Platform.Tap("c1").Inject(more, Tso(false, 1398));
            int got = 0;
            var until = DateTime.UtcNow.AddSeconds(5);
            while (got < 30 * 1398 && DateTime.UtcNow < until)
                if (c2.WaitTake(TimeSpan.FromMilliseconds(200)) is { } f) got += f.Length - headers;
        }
        Assert.True(c2.OffloadWrites.Count >= 1, "no super-frame was ever coalesced on arrival");
        Assert.All(c2.OffloadWrites, w => Assert.True(w.Frame.Length <= 14 + 65535));
        a.Router.Dispose();
        b.Router.Dispose();
    }

    [Fact]
    public void An_encrypted_super_frame_leaves_as_ESP_segments_and_arrives_coalesced()
    {
        using var hosts = new InMemoryHosts();
        var key = Enumerable.Range(0, 32).Select(i => (byte)i).ToArray();
        RouterOptions Encrypted(RouterOptions o) => o with
        {
            Networks = [InMemoryHosts.Blue with { Encrypted = true }],
            Encryption = new EncryptionOptions
            {
                Keys = new UserOverlay.Crypto.StaticNetworkKeySource([new UserOverlay.Crypto.NetworkKey("blue", key)]),
                Esp = new UserOverlay.Crypto.EspOptions { SequenceStore = new UserOverlay.Crypto.InMemorySequenceStore(), Encapsulation = UserOverlay.Crypto.EspEncapsulation.Udp },
            },
        };
        var a = OffloadHost(hosts, 1, 2, Encrypted);
        var b = OffloadHost(hosts, 2, 1, Encrypted);
        var super = TsoFrame(false, 30 * 1364, seq: 5);
        a.Platform.Tap("c1").Inject(super, Tso(false, 1364));
        var received = new List<byte>();
        var deadline = DateTime.UtcNow.AddSeconds(5);
        int headers = 14 + 20 + 20;
        while (received.Count < 30 * 1364 && DateTime.UtcNow < deadline)
        {
            var f = b.Platform.Tap("c2").WaitTake(TimeSpan.FromMilliseconds(200));
            if (f is not null) received.AddRange(f[headers..]);
        }
        Assert.Equal(super[headers..], received.ToArray());
        var esp = a.Platform.EspUnderlay!.Sent.ToArray();
        Assert.Equal(30, esp.Length); // thirty ESP packets on the wire, one per segment
        Assert.All(esp, d => Assert.Equal(UserOverlay.Crypto.Esp.SealedLength(16 + 14 + 20 + 20 + 1364), d.Payload.Length));
        Assert.Empty(a.Platform.Underlay!.Sent); // and no plain VXLAN
        Assert.Equal(0, b.Router.GetStatus().Esp!.Dropped.Values.Sum());
        a.Router.Dispose();
        b.Router.Dispose();
    }

    private sealed class OffloadPlatform(InMemoryUnderlayNetwork n) : IRouterPlatform
    {
        public readonly InMemoryPlatform Inner = new(n);
        public ITapDevice CreateTap(TapRequest r) { var t = new ChannelTap(r.Name, offload: true); Taps[(r.Netns, r.Name)] = t; return t; }
        public readonly Dictionary<(string, string), ChannelTap> Taps = new();
        public IUnderlay OpenUnderlay(VtepEndpoint local, int batch) => Inner.OpenUnderlay(local, batch);
        public IUnderlay OpenEspUnderlay(VtepEndpoint local, int port, int batch) => Inner.OpenEspUnderlay(local, port, batch);
    }

    private sealed record OffloadHostHandle(OverlayRouter Router, OffloadPlatformView Platform);
    private sealed class OffloadPlatformView(OffloadPlatform p)
    {
        public ChannelTap Tap(string ns) => p.Taps[(ns, "eth0")];
        public InMemoryUnderlay? Underlay => p.Inner.Underlay;
        public InMemoryUnderlay? EspUnderlay => p.Inner.EspUnderlay;
    }

    private static OffloadHostHandle OffloadHost(InMemoryHosts hosts, int i, int peer, Func<RouterOptions, RouterOptions>? tweak = null)
    {
        var platform = new OffloadPlatform(hosts.Underlay);
        tweak ??= o => o;
        var router = OverlayRouter.Start(tweak(new RouterOptions
        {
            Underlay = InMemoryHosts.Vtep(i),
            Peers = [InMemoryHosts.Vtep(peer)],
            Networks = [InMemoryHosts.Blue],
            Endpoints = [InMemoryHosts.Endpoint("blue", $"c{i}", $"198.18.0.1{i}")],
            StaticFdb = [new StaticFdbEntry { Network = "blue", Mac = i == 1 ? B : A, Vtep = InMemoryHosts.Vtep(peer) }],
        }), platform);
        platform.Inner.Underlay!.RecordSent = true;
        if (platform.Inner.EspUnderlay is { } esp) esp.RecordSent = true;
        return new OffloadHostHandle(router, new OffloadPlatformView(platform));
    }
}
