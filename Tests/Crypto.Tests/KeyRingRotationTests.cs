using System.Buffers.Binary;
using System.Net;

namespace UserOverlay.Crypto.Tests;

/// <summary>
/// Network key rings in the SA database: two hosts exchange packets continuously, both directions, while their rings
/// are rotated the swarm way with each host updated at its own moment; and what goes wrong when that order is broken.
/// </summary>
public class KeyRingRotationTests
{
    private const string Id = "net1";

    /// <summary>One host: its own mutable key source (the control plane's), its database and its handle for the other host.</summary>
    private sealed class Host : IDisposable
    {
        public readonly MutableNetworkKeySource Keys = new();
        public readonly EspSecurityDatabase Db;
        public readonly EspPeer ToPeer;
        public DateTimeOffset Now;

        public Host(IPAddress self, IPAddress peer, NetworkKeyRing ring, DateTimeOffset now, EspOptions? options = null)
        {
            Keys.Set(ring);
            Now = now;
            Db = new EspSecurityDatabase(self, Keys, (options ?? new EspOptions()) with { SequenceStore = new InMemorySequenceStore() }, now);
            ToPeer = Db.AddPeer(Id, peer);
        }

        /// <summary>The control plane hands this host a new ring; the router's timer ticks.</summary>
        public void Learn(NetworkKeyRing ring)
        {
            Keys.Set(ring);
            Db.Tick(Now);
        }

        public void Dispose() => Db.Dispose();
    }

    /// <summary>Both directions: packets sealed now, half opened at once, half kept in flight until the next step.</summary>
    private sealed class Traffic(Host a, Host b)
    {
        private readonly Queue<(byte[] Packet, Host To)> _inFlight = new();
        private ushort _n;
        public int Sealed, Opened, NotSent;
        public readonly Dictionary<EspOpenStatus, int> Failures = [];

        public void Step(int packets = 8)
        {
            while (_inFlight.TryDequeue(out var f))
                Deliver(f.Packet, f.To);
            for (int i = 0; i < packets; i++)
            {
                foreach (var (from, to) in new[] { (a, b), (b, a) })
                {
                    byte[]? p = Seal(from.ToPeer, ++_n);
                    if (p is null)
                    {
                        NotSent++;
                        continue;
                    }
                    Sealed++;
                    if (i % 2 == 0)
                        Deliver(p, to);
                    else
                        _inFlight.Enqueue((p, to));
                }
            }
        }

        public void Flush()
        {
            while (_inFlight.TryDequeue(out var f))
                Deliver(f.Packet, f.To);
        }

        public int FailureCount => Failures.Values.Sum();

        private void Deliver(byte[] packet, Host to)
        {
            EspOpenStatus st = to.Db.Open(packet, out _, out _, out byte next, out InboundSa? sa);
            if (st == EspOpenStatus.Ok && next == Esp.NextHeaderUdp && sa!.KeyId == Id)
                Opened++;
            else
                Failures[st] = Failures.GetValueOrDefault(st) + 1;
        }
    }

    private static byte[]? Seal(EspPeer peer, ushort n)
    {
        byte[] payload = Packets.VxlanIcmp(4096, n);
        byte[] buf = Packets.InBuffer(payload);
        if (peer.Seal(buf, 64, payload.Length, Esp.NextHeaderUdp, out int len) != EspSealStatus.Ok)
            return null;
        return buf.AsSpan(64 - Esp.HeaderLength, len).ToArray();
    }

    private static uint Spi(byte[] p) => BinaryPrimitives.ReadUInt32BigEndian(p);

    private static NetworkKey Key(int generation) =>
        new(Id, Enumerable.Range(0, 32).Select(i => (byte)(generation * 31 + i)).ToArray());

    [Fact]
    public void Swarm_rotation_with_hosts_updated_at_different_moments_loses_no_packet()
    {
        // Epochs rotate too (10-minute interval, 4 minutes per step, B's clock 3 minutes behind A's).
        var options = new EspOptions { RekeyInterval = TimeSpan.FromMinutes(10) };
        var a = new Host(Packets.HostA, Packets.HostB, new NetworkKeyRing(Key(1)), Pair.T0, options);
        var b = new Host(Packets.HostB, Packets.HostA, new NetworkKeyRing(Key(1)), Pair.T0 - TimeSpan.FromMinutes(3), options);
        using var _a = a;
        using var _b = b;
        var traffic = new Traffic(a, b);

        void Advance()
        {
            a.Now += TimeSpan.FromMinutes(4);
            b.Now += TimeSpan.FromMinutes(4);
            a.Db.Tick(a.Now);
            b.Db.Tick(b.Now);
            traffic.Step();
        }

        traffic.Step();
        const int Rotations = 6;
        for (int g = 1; g <= Rotations; g++)
        {
            // The managers' ring for rotation g: the previous key (if any), the primary k_g, the new key k_{g+1}; swarm keeps 3.
            NetworkKey[] withNew = g == 1 ? [Key(1), Key(2)] : [Key(g - 1), Key(g), Key(g + 1)];
            int primaryOld = g == 1 ? 0 : 1;

            // 1. The new key joins the rings, primary unchanged: B first, then A, packets in between.
            b.Learn(new NetworkKeyRing(withNew, primaryOld));
            traffic.Step();
            OutboundSa before = a.ToPeer.CurrentOutbound!;
            a.Learn(new NetworkKeyRing(withNew, primaryOld));
            Assert.Same(before, a.ToPeer.CurrentOutbound); // a new receive-only key leaves the sending SA as it is
            traffic.Step();
            Advance();

            // 2. The new key becomes primary: A first, then B.
            a.Learn(new NetworkKeyRing(withNew, primaryOld + 1));
            traffic.Step();
            b.Learn(new NetworkKeyRing(withNew, primaryOld + 1));
            traffic.Step();
            Advance();

            // 3. The oldest key leaves (swarm drops it when the ring outgrows 3): [k_g, k_{g+1}], primary k_{g+1}.
            if (g > 1)
            {
                var trimmed = new NetworkKeyRing([Key(g), Key(g + 1)], 1);
                a.Learn(trimmed);
                traffic.Step();
                b.Learn(trimmed);
                traffic.Step();
                Advance();
            }
            // A seals with k_{g+1} now (its SA is the one derived from that key).
            OutboundSa now = a.ToPeer.CurrentOutbound!;
            Assert.Equal(EspKeyDerivation.Derive(Key(g + 1), Packets.HostA, Packets.HostB, now.Epoch, false).Spi, now.Spi);
        }
        traffic.Flush();

        Assert.Empty(traffic.Failures);
        Assert.Equal(0, traffic.NotSent);
        Assert.Equal(traffic.Sealed, traffic.Opened);
        Assert.True(traffic.Sealed > 400, $"{traffic.Sealed} packets sealed");
        Assert.Equal(0, a.Db.Counters.Dropped(EspOpenStatus.UnknownSpi) + b.Db.Counters.Dropped(EspOpenStatus.UnknownSpi));
        // Each host ends with a ring of two keys: 2 × 3 epochs of inbound SAs.
        Assert.Equal(6, a.Db.InboundCount);
        Assert.Equal(6, b.Db.InboundCount);
        // And the last rotation's key is what A seals with: B's rings have moved on to k7, k1 is long gone.
        Assert.True(b.Keys.TryGetKey(Id, out NetworkKey? bPrimary) && bPrimary.SecretEquals(Key(Rotations + 1)));
    }

    [Fact]
    public void Switching_the_primary_before_the_peer_has_the_key_loses_packets()
    {
        var a = new Host(Packets.HostA, Packets.HostB, new NetworkKeyRing(Key(1)), Pair.T0);
        var b = new Host(Packets.HostB, Packets.HostA, new NetworkKeyRing(Key(1)), Pair.T0);
        using var _a = a;
        using var _b = b;
        var traffic = new Traffic(a, b);
        traffic.Step();
        Assert.Equal(0, traffic.FailureCount);

        // A makes k2 primary while B does not know k2 yet (the order swarm avoids).
        a.Learn(new NetworkKeyRing([Key(1), Key(2)], 1));
        traffic.Step();
        // The 4 A → B packets delivered at once are unknown to B (the 4 in flight follow); B → A still opens (A has k1).
        Assert.Equal(4, traffic.Failures.GetValueOrDefault(EspOpenStatus.UnknownSpi));
        Assert.Equal(4, traffic.FailureCount);

        // Once B has k2 the traffic flows again.
        b.Learn(new NetworkKeyRing([Key(1), Key(2)], 0));
        int failed = traffic.FailureCount;
        traffic.Step();
        traffic.Flush();
        Assert.Equal(failed, traffic.FailureCount);
    }

    [Fact]
    public void Removing_the_primary_from_the_ring_at_once_also_loses_packets()
    {
        // The other wrong order: a host replaces its ring with one that lacks the key its peer still seals with.
        var a = new Host(Packets.HostA, Packets.HostB, new NetworkKeyRing(Key(1)), Pair.T0);
        var b = new Host(Packets.HostB, Packets.HostA, new NetworkKeyRing(Key(1)), Pair.T0);
        using var _a = a;
        using var _b = b;
        var traffic = new Traffic(a, b);
        b.Learn(new NetworkKeyRing(Key(2)));
        traffic.Step();
        // Both directions fail: B has only k2, A only k1 (4 packets each way delivered at once).
        Assert.Equal(8, traffic.Failures.GetValueOrDefault(EspOpenStatus.UnknownSpi));
        Assert.Equal(8, traffic.FailureCount);
    }

    [Fact]
    public void Sas_of_keys_the_new_ring_keeps_are_kept_with_their_sequence_numbers_and_replay_windows()
    {
        var a = new Host(Packets.HostA, Packets.HostB, new NetworkKeyRing(Key(1)), Pair.T0);
        var b = new Host(Packets.HostB, Packets.HostA, new NetworkKeyRing(Key(1)), Pair.T0);
        using var _a = a;
        using var _b = b;
        byte[] first = Seal(a.ToPeer, 1)!;
        Assert.Equal(EspOpenStatus.Ok, b.Db.Open(first.ToArray(), out _, out _, out _, out InboundSa? k1In));
        OutboundSa k1Out = a.ToPeer.CurrentOutbound!;
        Assert.Equal(3, b.Db.InboundCount);

        // k2 joins B's ring: 3 more inbound SAs; the k1 SA is the same object, so the packet already seen stays replayed.
        b.Learn(new NetworkKeyRing([Key(1), Key(2)], 0));
        Assert.Equal(6, b.Db.InboundCount);
        Assert.Equal(EspOpenStatus.Replayed, b.Db.Open(first.ToArray(), out _, out _, out _, out _));
        byte[] second = Seal(a.ToPeer, 2)!;
        Assert.Equal(EspOpenStatus.Ok, b.Db.Open(second.ToArray(), out _, out _, out _, out InboundSa? again));
        Assert.Same(k1In, again);
        Assert.Equal(2, k1In!.Accepted);

        // A learns the same ring: its outbound SA (and sequence counter) is kept.
        a.Learn(new NetworkKeyRing([Key(1), Key(2)], 0));
        Assert.Same(k1Out, a.ToPeer.CurrentOutbound);
        Assert.Equal(2UL, k1Out.LastSequence);
        Assert.Equal(0, a.Db.Counters.Rotations);

        // A switches to k2: a new outbound SA, counted as a rotation; k1's is retired (disposed a tick later).
        a.Learn(new NetworkKeyRing([Key(1), Key(2)], 1));
        OutboundSa k2Out = a.ToPeer.CurrentOutbound!;
        Assert.NotSame(k1Out, k2Out);
        Assert.NotEqual(k1Out.Spi, k2Out.Spi);
        Assert.Equal(1, a.Db.Counters.Rotations);
        byte[] third = Seal(a.ToPeer, 3)!;
        Assert.Equal(k2Out.Spi, Spi(third));
        Assert.Equal(EspOpenStatus.Ok, b.Db.Open(third.ToArray(), out _, out _, out _, out InboundSa? k2In));
        Assert.NotSame(k1In, k2In);
        // B still holds k1's SA with its window: a k1 packet is still checked against it.
        Assert.Equal(EspOpenStatus.Replayed, b.Db.Open(second.ToArray(), out _, out _, out _, out _));

        // k1 leaves B's ring: its SAs leave the lookup at once.
        b.Learn(new NetworkKeyRing(Key(2)));
        Assert.Equal(3, b.Db.InboundCount);
        Assert.Same(k2In, OpenSa(b, Seal(a.ToPeer, 4)!));
        byte[] stale = SealWith(Key(1), Packets.HostA, Packets.HostB, 99);
        Assert.Equal(EspOpenStatus.UnknownSpi, b.Db.Open(stale, out _, out _, out _, out _));
    }

    [Fact]
    public void An_outbound_sa_whose_key_leaves_the_ring_stops_at_once_and_the_new_primary_takes_over()
    {
        var a = new Host(Packets.HostA, Packets.HostB, new NetworkKeyRing(Key(1)), Pair.T0);
        using var _a = a;
        OutboundSa k1Out = a.ToPeer.CurrentOutbound!;
        a.Learn(new NetworkKeyRing(Key(2)));
        Assert.NotSame(k1Out, a.ToPeer.CurrentOutbound);
        Assert.Equal(SealWith(Key(2), Packets.HostA, Packets.HostB, 1).Take(4), Seal(a.ToPeer, 1)!.Take(4)); // same SPI: k2's SA
        a.Db.Tick(a.Now);
        a.Db.Tick(a.Now);
        Assert.Equal(EspSealStatus.NoSa, k1Out.Seal(new byte[200], 64, 50, Esp.NextHeaderUdp, out _)); // retired, then disposed: fails closed

        // The ring disappears: no key, no SA, no send.
        a.Keys.Remove(Id);
        a.Db.Tick(a.Now);
        Assert.Null(a.ToPeer.CurrentOutbound);
        Assert.Equal(0, a.Db.InboundCount);
        Assert.Null(Seal(a.ToPeer, 2));
    }

    [Fact]
    public void Every_key_of_a_ring_has_its_own_spis()
    {
        var ring = new NetworkKeyRing([Key(1), Key(2), Key(3)], 1);
        var b = new Host(Packets.HostB, Packets.HostA, ring, Pair.T0);
        using var _b = b;
        Assert.Equal(9, b.Db.InboundCount);
        Assert.Empty(b.Db.SpiCollisions);
        IReadOnlyList<EspSaDescription> d = b.Db.Describe();
        Assert.Equal(9, d.Count(x => x.Direction == EspDirection.Inbound));
        Assert.Equal(9, d.Where(x => x.Direction == EspDirection.Inbound).Select(x => x.Spi).Distinct().Count());
        Assert.Equal(9, d.Where(x => x.Direction == EspDirection.Inbound).Select(x => x.KeyHex).Distinct().Count());
        // The outbound SA comes from the primary (k2).
        var outbound = Assert.Single(d, x => x.Direction == EspDirection.Outbound);
        long e = EspEpoch.Of(Pair.T0, TimeSpan.FromHours(1));
        Assert.Equal(EspKeyDerivation.Derive(Key(2), Packets.HostB, Packets.HostA, e, false).Spi, outbound.Spi);
    }

    /// <summary>Two keys whose SAs A → B in epoch 490896 (2026-01-01T00:00Z, 1-hour epochs) share an SPI: found by
    /// a birthday search over keys i ‖ 0x5a × 28 (i little-endian); the test checks the derivation really collides.</summary>
    private static NetworkKey CollidingKey(uint i)
    {
        byte[] secret = Enumerable.Repeat((byte)0x5a, 32).ToArray();
        BinaryPrimitives.WriteUInt32LittleEndian(secret, i);
        return new NetworkKey(Id, secret);
    }

    [Fact]
    public void Keys_of_one_ring_whose_spis_collide_are_both_accepted()
    {
        NetworkKey x = CollidingKey(6053), y = CollidingKey(149083);
        long e = EspEpoch.Of(Pair.T0, TimeSpan.FromHours(1));
        Assert.Equal(490896, e);
        uint spi = EspKeyDerivation.Derive(x, Packets.HostA, Packets.HostB, e, false).Spi;
        Assert.Equal(spi, EspKeyDerivation.Derive(y, Packets.HostA, Packets.HostB, e, false).Spi);
        Assert.Equal(0xa7187732u, spi);

        var a = new Host(Packets.HostA, Packets.HostB, new NetworkKeyRing([x, y], 0), Pair.T0);
        var b = new Host(Packets.HostB, Packets.HostA, new NetworkKeyRing([x, y], 0), Pair.T0);
        using var _a = a;
        using var _b = b;
        Assert.Equal(1, b.Db.Counters.CurrentSpiCollisions);
        Assert.Equal(spi, Assert.Single(b.Db.SpiCollisions).Spi);

        byte[] underX = Seal(a.ToPeer, 1)!;
        a.Learn(new NetworkKeyRing([x, y], 1));
        byte[] underY = Seal(a.ToPeer, 2)!;
        Assert.Equal(spi, Spi(underX));
        Assert.Equal(spi, Spi(underY));
        InboundSa? sx = OpenSa(b, underY);   // y first: the trial order does not matter
        InboundSa? sy = OpenSa(b, underX);
        Assert.NotNull(sx);
        Assert.NotNull(sy);
        Assert.NotSame(sx, sy);
        Assert.Equal(EspOpenStatus.Replayed, b.Db.Open(underX.ToArray(), out _, out _, out _, out _));
        Assert.Equal(0, b.Db.Counters.Dropped(EspOpenStatus.AuthenticationFailed));

        // x leaves the ring: the collision is gone.
        b.Learn(new NetworkKeyRing(y));
        Assert.Equal(0, b.Db.Counters.CurrentSpiCollisions);
        Assert.Equal(1, b.Db.Counters.SpiCollisionsDetected);
    }

    private static InboundSa? OpenSa(Host h, byte[] packet) =>
        h.Db.Open(packet.ToArray(), out _, out _, out _, out InboundSa? sa) == EspOpenStatus.Ok ? sa : null;

    /// <summary>A packet sealed by a stand-alone SA of <paramref name="key"/> (as a host still holding it would send).</summary>
    private static byte[] SealWith(NetworkKey key, IPAddress from, IPAddress to, ushort n)
    {
        using var db = new EspSecurityDatabase(from, new MutableNetworkKeySource([new NetworkKeyRing(key)]),
            new EspOptions { SequenceStore = new InMemorySequenceStore() }, Pair.T0);
        return Seal(db.AddPeer(Id, to), n)!;
    }
}
