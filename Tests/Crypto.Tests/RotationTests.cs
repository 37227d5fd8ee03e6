using System.Buffers.Binary;
using System.Net;

namespace UserOverlay.Crypto.Tests;

/// <summary>Key epochs: scheduled rotation, grace period, clock skew, early rotation, restarts, no SA no send.</summary>
public class RotationTests
{
    private static readonly TimeSpan Hour = TimeSpan.FromHours(1);

    private static byte[] Seal(EspPeer peer, ushort n = 1, EspSealStatus expected = EspSealStatus.Ok)
    {
        byte[] payload = Packets.VxlanIcmp(4096, n);
        byte[] buf = Packets.InBuffer(payload);
        Assert.Equal(expected, peer.Seal(buf, 64, payload.Length, Esp.NextHeaderUdp, out int len));
        return buf.AsSpan(64 - Esp.HeaderLength, len).ToArray();
    }

    private static EspOpenStatus Open(EspSecurityDatabase db, byte[] packet) =>
        db.Open(packet.AsSpan().ToArray(), out _, out _, out _, out _);

    private static uint Spi(byte[] p) => BinaryPrimitives.ReadUInt32BigEndian(p);

    [Fact]
    public void Default_rekey_interval_is_one_hour_and_receivers_accept_neighbouring_epochs()
    {
        var o = new EspOptions();
        Assert.Equal(Hour, o.RekeyInterval);
        Assert.Equal(1, o.EpochSpread);
        using var pair = new Pair();
        long e = EspEpoch.Of(Pair.T0, Hour);
        Assert.Equal(e, pair.AtoB.CurrentOutbound!.Epoch);
        Assert.Equal(3, pair.B.InboundCount); // e-1, e, e+1 from A
    }

    [Fact]
    public void Sender_moves_to_the_next_epoch_at_the_boundary_and_the_receiver_loses_nothing()
    {
        using var pair = new Pair();
        byte[] before = Seal(pair.AtoB, 1);
        pair.A.Tick(Pair.T0 + Hour); // A rotates, B has not ticked yet
        byte[] after = Seal(pair.AtoB, 2);
        Assert.NotEqual(Spi(before), Spi(after));
        Assert.Equal(1, pair.A.Counters.Rotations);

        Assert.Equal(EspOpenStatus.Ok, Open(pair.B, after));  // B (still epoch e) accepts e+1
        pair.B.Tick(Pair.T0 + Hour);
        Assert.Equal(EspOpenStatus.Ok, Open(pair.B, before)); // in flight across B's rotation: grace period keeps e
        pair.B.Tick(Pair.T0 + 2 * Hour);
        Assert.Equal(EspOpenStatus.UnknownSpi, Open(pair.B, before)); // e is now two behind: its SA is gone
    }

    [Fact]
    public void Rotation_under_load_with_skewed_clocks_and_delay_loses_no_packet()
    {
        using var pair = new Pair(new EspOptions { RekeyInterval = TimeSpan.FromMinutes(10) });
        var inFlight = new Queue<(byte[] Packet, EspSecurityDatabase To)>();
        int sent = 0;
        var skew = TimeSpan.FromMinutes(7); // B's clock runs 7 minutes behind A's (less than one interval)
        for (int step = 0; step < 6 * 60 * 3; step++) // three simulated hours in 20-second steps
        {
            DateTimeOffset t = Pair.T0 + TimeSpan.FromSeconds(20 * step);
            pair.A.Tick(t);
            pair.B.Tick(t - skew);
            for (int k = 0; k < 5; k++)
            {
                inFlight.Enqueue((Seal(pair.AtoB, (ushort)sent), pair.B));
                inFlight.Enqueue((Seal(pair.BtoA, (ushort)sent), pair.A));
                sent += 2;
            }
            // Packets spend three steps (a minute) in flight, so some cross every rotation.
            while (inFlight.Count > 30)
            {
                var (p, to) = inFlight.Dequeue();
                Assert.Equal(EspOpenStatus.Ok, Open(to, p));
            }
        }
        Assert.True(pair.A.Counters.Rotations >= 17);
        Assert.True(pair.B.Counters.Rotations >= 17);
        foreach (EspOpenStatus s in Enum.GetValues<EspOpenStatus>())
        {
            Assert.Equal(0, pair.A.Counters.Dropped(s));
            Assert.Equal(0, pair.B.Counters.Dropped(s));
        }
    }

    [Fact]
    public void Clock_skew_of_one_full_interval_is_tolerated_and_two_is_not()
    {
        using var pair = new Pair();
        pair.A.Tick(Pair.T0 + Hour); // A is one interval ahead of B
        Assert.Equal(EspOpenStatus.Ok, Open(pair.B, Seal(pair.AtoB)));
        Assert.Equal(EspOpenStatus.Ok, Open(pair.A, Seal(pair.BtoA)));

        pair.A.Tick(Pair.T0 + 2 * Hour); // two intervals: outside the accepted epochs
        Assert.Equal(EspOpenStatus.UnknownSpi, Open(pair.B, Seal(pair.AtoB)));
        Assert.Equal(EspOpenStatus.UnknownSpi, Open(pair.A, Seal(pair.BtoA)));
    }

    [Fact]
    public void Epoch_spread_two_tolerates_two_intervals()
    {
        using var pair = new Pair(new EspOptions { EpochSpread = 2 });
        pair.A.Tick(Pair.T0 + 2 * Hour);
        Assert.Equal(EspOpenStatus.Ok, Open(pair.B, Seal(pair.AtoB)));
        Assert.Equal(EspOpenStatus.Ok, Open(pair.A, Seal(pair.BtoA)));
    }

    [Fact]
    public void An_sa_rotates_early_when_its_sequence_budget_is_used_and_never_goes_back()
    {
        using var pair = new Pair(new EspOptions { RekeyAfterPackets = 100 });
        long e = pair.AtoB.CurrentOutbound!.Epoch;
        var packets = Enumerable.Range(0, 150).Select(i => Seal(pair.AtoB, (ushort)i)).ToList();
        Assert.True(pair.AtoB.CurrentOutbound!.NeedsRekey);
        pair.A.Tick(Pair.T0 + TimeSpan.FromMinutes(1));
        Assert.Equal(e + 1, pair.AtoB.CurrentOutbound!.Epoch);
        packets.AddRange(Enumerable.Range(0, 150).Select(i => Seal(pair.AtoB, (ushort)i)));
        // e+1 is used up too, but e+2 is beyond what receivers accept: A keeps e+1 (it fails closed only at 2^32 − 1).
        pair.A.Tick(Pair.T0 + TimeSpan.FromMinutes(2));
        Assert.Equal(e + 1, pair.AtoB.CurrentOutbound!.Epoch);
        // When the clock reaches e+1, the SA of e+1 stays in use (epochs never go back); e+2 follows.
        pair.A.Tick(Pair.T0 + Hour);
        Assert.Equal(e + 2, pair.AtoB.CurrentOutbound!.Epoch);
        foreach (byte[] p in packets)
            Assert.Equal(EspOpenStatus.Ok, Open(pair.B, p));
    }

    [Fact]
    public void Without_esn_an_sa_never_seals_past_2_to_the_32_minus_1()
    {
        var p = new EspSaParameters { Spi = 0x777, Key = new byte[16], Salt = new byte[4] };
        using var sa = new OutboundSa(p, lastSequence: uint.MaxValue - 2);
        byte[] payload = Packets.VxlanIcmp(1, 1);
        byte[] buf = Packets.InBuffer(payload);
        Assert.Equal(EspSealStatus.Ok, sa.Seal(buf, 64, payload.Length, 17, out _));
        Assert.Equal(EspSealStatus.Ok, sa.Seal(buf, 64, payload.Length, 17, out _));
        Assert.Equal(uint.MaxValue, BinaryPrimitives.ReadUInt32BigEndian(buf.AsSpan(64 - 12)));
        byte[] before = (byte[])buf.Clone();
        Assert.Equal(EspSealStatus.SequenceExhausted, sa.Seal(buf, 64, payload.Length, 17, out int n));
        Assert.Equal(0, n);
        Assert.Equal(before, buf); // nothing written
        Assert.True(sa.IsExhausted);
    }

    [Fact]
    public void After_a_restart_the_sender_continues_above_every_number_it_may_have_used()
    {
        var key = new NetworkKey(Pair.KeyId, Enumerable.Repeat((byte)3, 16).ToArray());
        var keys = new StaticNetworkKeySource([key]);
        var storeA = new InMemorySequenceStore();
        var storeB = new InMemorySequenceStore();
        var options = new EspOptions { SequenceReservationBlock = 1000 };
        using var b = new EspSecurityDatabase(Packets.HostB, keys, options with { SequenceStore = storeB }, Pair.T0);
        b.AddPeer(Pair.KeyId, Packets.HostA);

        var seen = new HashSet<(uint Spi, uint Seq)>();
        for (int run = 0; run < 3; run++)
        {
            using var a = new EspSecurityDatabase(Packets.HostA, keys, options with { SequenceStore = storeA }, Pair.T0 + TimeSpan.FromMinutes(run));
            EspPeer toB = a.AddPeer(Pair.KeyId, Packets.HostB);
            for (int i = 0; i < 50; i++)
            {
                byte[] p = Seal(toB, (ushort)i);
                Assert.True(seen.Add((Spi(p), BinaryPrimitives.ReadUInt32BigEndian(p.AsSpan(4)))), "a (key, sequence number) pair repeated");
                Assert.Equal(EspOpenStatus.Ok, Open(b, p)); // the receiver's window keeps working across the sender's restart
            }
        }
        Assert.Single(seen.Select(s => s.Spi).Distinct()); // same epoch, same derived key and SPI: safe only because numbers moved on
    }

    [Fact]
    public void A_restarted_daemon_with_a_file_store_never_repeats_a_sequence_number()
    {
        string dir = Path.Combine(Path.GetTempPath(), "uo-crypto-" + Guid.NewGuid().ToString("n"));
        try
        {
            string path = Path.Combine(dir, "esp-sequence");
            var keys = new StaticNetworkKeySource([new NetworkKey(Pair.KeyId, Enumerable.Repeat((byte)6, 32).ToArray())]);
            var seqs = new List<(uint Spi, uint Seq)>();
            for (int run = 0; run < 2; run++)
            {
                // A new store object each run, as after a process restart: only the file carries over.
                using var a = new EspSecurityDatabase(Packets.HostA, keys,
                    new EspOptions { SequenceStore = new FileSequenceStore(path), SequenceReservationBlock = 100 }, Pair.T0);
                EspPeer toB = a.AddPeer(Pair.KeyId, Packets.HostB);
                for (int i = 0; i < 10; i++)
                {
                    byte[] p = Seal(toB, (ushort)i);
                    seqs.Add((Spi(p), BinaryPrimitives.ReadUInt32BigEndian(p.AsSpan(4))));
                }
            }
            Assert.Equal(seqs.Count, seqs.Distinct().Count());
            Assert.Equal(1u, seqs[0].Seq);
            Assert.Equal(101u, seqs[10].Seq); // the first run reserved 1..100
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    [Fact]
    public void Many_new_sas_are_reserved_with_one_durable_write()
    {
        string dir = Path.Combine(Path.GetTempPath(), "uo-crypto-" + Guid.NewGuid().ToString("n"));
        try
        {
            var store = new FileSequenceStore(Path.Combine(dir, "esp-sequence"));
            var keys = new StaticNetworkKeySource([new NetworkKey(Pair.KeyId, new byte[16])]);
            using var a = new EspSecurityDatabase(Packets.HostA, keys, new EspOptions { SequenceStore = store }, Pair.T0);
            var peers = Enumerable.Range(10, 50).Select(i => IPAddress.Parse($"192.0.2.{i}")).ToList();
            var handles = a.SetPeers(Pair.KeyId, peers);
            Assert.Equal(1, store.Writes);
            Assert.All(handles, h => Assert.True(h.CurrentOutbound!.ReservedThrough > 0));
            a.Tick(Pair.T0 + Hour); // all 50 rotate: one write for the new SAs, one for pruning
            Assert.Equal(3, store.Writes);
            Assert.Equal(50, a.Counters.Rotations);
            Assert.All(handles, h => Assert.Equal(EspEpoch.Of(Pair.T0 + Hour, Hour), h.CurrentOutbound!.Epoch));
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    [Fact]
    public void A_restarted_receiver_does_not_accept_old_packets_again()
    {
        using var pair = new Pair();
        var captured = Enumerable.Range(0, 100).Select(i => Seal(pair.AtoB, (ushort)i)).ToList();
        foreach (byte[] p in captured)
            Assert.Equal(EspOpenStatus.Ok, Open(pair.B, p));
        pair.B.Tick(Pair.T0 + TimeSpan.FromSeconds(1)); // saves the replay state

        using var restarted = new EspSecurityDatabase(Packets.HostB, pair.Keys,
            new EspOptions { SequenceStore = pair.StoreB }, Pair.T0 + TimeSpan.FromSeconds(2));
        restarted.AddPeer(Pair.KeyId, Packets.HostA);
        foreach (byte[] p in captured)
            Assert.NotEqual(EspOpenStatus.Ok, Open(restarted, p));
        Assert.Equal(EspOpenStatus.Ok, Open(restarted, Seal(pair.AtoB, 100)));
    }

    [Fact]
    public void A_restart_whose_epoch_key_is_used_up_moves_to_the_next_epoch()
    {
        var key = new NetworkKey(Pair.KeyId, Enumerable.Repeat((byte)4, 32).ToArray());
        long e = EspEpoch.Of(Pair.T0, Hour);
        EspSaParameters used = EspKeyDerivation.Derive(key, Packets.HostA, Packets.HostB, e, false);
        var store = new InMemorySequenceStore();
        store.Reserve(SecurityAssociation.ComputeRecordId(used.Key, used.Salt, used.Spi, false), e, uint.MaxValue - 10);

        using var a = new EspSecurityDatabase(Packets.HostA, new StaticNetworkKeySource([key]), new EspOptions { SequenceStore = store }, Pair.T0);
        EspPeer toB = a.AddPeer(Pair.KeyId, Packets.HostB);
        Assert.Equal(e + 1, toB.CurrentOutbound!.Epoch);
        Assert.NotEqual(used.Spi, toB.CurrentOutbound.Spi);
    }

    [Fact]
    public void Sealing_never_uses_a_number_that_is_not_durably_reserved()
    {
        var store = new InMemorySequenceStore();
        var keys = new StaticNetworkKeySource([new NetworkKey(Pair.KeyId, new byte[16])]);
        using var a = new EspSecurityDatabase(Packets.HostA, keys, new EspOptions { SequenceStore = store, SequenceReservationBlock = 64 }, Pair.T0);
        EspPeer toB = a.AddPeer(Pair.KeyId, Packets.HostB);
        string id = toB.CurrentOutbound!.RecordId;
        byte[] payload = Packets.VxlanIcmp(1, 1);
        int ok = 0;
        for (int i = 0; i < 1_000_000 && ok < 2000; i++)
        {
            byte[] buf = Packets.InBuffer(payload);
            EspSealStatus s = toB.Seal(buf, 64, payload.Length, 17, out _);
            if (s == EspSealStatus.Ok)
            {
                ok++;
                Assert.True(BinaryPrimitives.ReadUInt32BigEndian(buf.AsSpan(64 - 12)) <= store.GetReserved(id));
            }
            else
            {
                Assert.Equal(EspSealStatus.AwaitingReservation, s);
                OutboundSa sa = toB.CurrentOutbound!;
                Assert.True(SpinWait.SpinUntil(() => sa.ReservedThrough > sa.LastSequence, TimeSpan.FromSeconds(10)), "reservation never arrived");
            }
        }
        Assert.Equal(2000, ok);
        Assert.True(store.Writes > 10);
    }

    [Fact]
    public void File_store_survives_a_restart_and_refuses_a_corrupt_file()
    {
        string dir = Path.Combine(Path.GetTempPath(), "uo-crypto-" + Guid.NewGuid().ToString("n"));
        try
        {
            string path = Path.Combine(dir, "esp-sequence");
            var s1 = new FileSequenceStore(path);
            s1.Reserve("aa", 5, 1000);
            s1.Reserve("bb", 7, 2000);
            s1.Prune(6);
            var s2 = new FileSequenceStore(path);
            Assert.Equal(0ul, s2.GetReserved("aa"));
            Assert.Equal(2000ul, s2.GetReserved("bb"));
            Assert.Equal(6, s2.Floor);
            File.AppendAllText(path, "garbage\n");
            var ex = Assert.Throws<InvalidDataException>(() => new FileSequenceStore(path));
            Assert.Contains("reuse GCM nonces", ex.Message);
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    [Fact]
    public void No_sa_no_send()
    {
        var keys = new StaticNetworkKeySource();
        using var a = new EspSecurityDatabase(Packets.HostA, keys, new EspOptions { SequenceStore = new InMemorySequenceStore() }, Pair.T0);
        EspPeer toB = a.AddPeer("missing-key", Packets.HostB);
        byte[] payload = Packets.VxlanIcmp(1, 1);
        byte[] buf = Packets.InBuffer(payload);
        byte[] before = (byte[])buf.Clone();

        Assert.Equal(EspSealStatus.NoSa, toB.Seal(buf, 64, payload.Length, 17, out int n));
        Assert.Equal(0, n);
        Assert.Equal(EspSealStatus.NoSa, a.Seal("missing-key", Packets.HostC, buf, 64, payload.Length, 17, out _));
        Assert.Equal(before, buf); // the frame was not touched, let alone sent
        Assert.Equal(2, a.Counters.NotSent(EspSealStatus.NoSa));

        // The key appears: SAs are built at the next tick. It disappears: sealing stops again.
        keys.Set(new NetworkKey("missing-key", new byte[32]));
        a.Tick(Pair.T0);
        Assert.Equal(EspSealStatus.Ok, toB.Seal(buf, 64, payload.Length, 17, out _));
        keys.Remove("missing-key");
        a.Tick(Pair.T0);
        Assert.Equal(EspSealStatus.NoSa, toB.Seal(Packets.InBuffer(payload), 64, payload.Length, 17, out _));

        // A removed peer's handle never seals again.
        keys.Set(new NetworkKey("missing-key", new byte[32]));
        a.Tick(Pair.T0);
        Assert.True(a.RemovePeer("missing-key", Packets.HostB));
        Assert.True(toB.IsRemoved);
        Assert.Equal(EspSealStatus.NoSa, toB.Seal(Packets.InBuffer(payload), 64, payload.Length, 17, out _));
        Assert.Equal(4, a.Counters.NotSent(EspSealStatus.NoSa));
    }

    [Fact]
    public void A_changed_key_replaces_every_sa()
    {
        using var pair = new Pair();
        byte[] old = Seal(pair.AtoB);
        var newKey = new NetworkKey(Pair.KeyId, Enumerable.Repeat((byte)0x55, 32).ToArray());
        pair.Keys.Set(newKey);
        pair.A.Tick(Pair.T0);
        pair.B.Tick(Pair.T0);
        byte[] fresh = Seal(pair.AtoB);
        Assert.NotEqual(Spi(old), Spi(fresh));
        Assert.Equal(EspOpenStatus.UnknownSpi, Open(pair.B, old));
        Assert.Equal(EspOpenStatus.Ok, Open(pair.B, fresh));
    }

    [Fact]
    public void Set_peers_follows_membership()
    {
        using var pair = new Pair();
        var handles = pair.A.SetPeers(Pair.KeyId, [Packets.HostB, Packets.HostC, Packets.HostA]);
        Assert.Equal(2, handles.Count); // the local VTEP is not a peer
        Assert.Same(pair.AtoB, pair.A.FindPeer(Pair.KeyId, Packets.HostB));
        Assert.Equal(6, pair.A.InboundCount);
        pair.A.SetPeers(Pair.KeyId, [Packets.HostC]);
        Assert.True(pair.AtoB.IsRemoved);
        Assert.Equal(3, pair.A.InboundCount);
    }

    [Fact]
    public void Retired_sas_are_disposed_a_tick_later_and_then_fail_closed()
    {
        using var pair = new Pair();
        OutboundSa old = pair.AtoB.CurrentOutbound!;
        pair.A.Tick(Pair.T0 + Hour);
        byte[] payload = Packets.VxlanIcmp(1, 1);
        Assert.Equal(EspSealStatus.Ok, old.Seal(Packets.InBuffer(payload), 64, payload.Length, 17, out _)); // still usable in flight
        pair.A.Tick(Pair.T0 + Hour + TimeSpan.FromSeconds(1));
        pair.A.Tick(Pair.T0 + Hour + TimeSpan.FromSeconds(2));
        Assert.Equal(EspSealStatus.NoSa, old.Seal(Packets.InBuffer(payload), 64, payload.Length, 17, out _));
    }
}
