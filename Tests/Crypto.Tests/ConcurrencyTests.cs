using System.Buffers.Binary;
using System.Collections.Concurrent;

namespace UserOverlay.Crypto.Tests;

/// <summary>Thread contracts: concurrent sealers never share a sequence number; concurrent openers accept each number once.</summary>
public class ConcurrencyTests
{
    [Fact]
    public void Concurrent_sealers_get_distinct_sequence_numbers_and_every_packet_opens_once()
    {
        using var pair = new Pair(new EspOptions { CipherLanes = 4 });
        const int threads = 4, perThread = 2000;
        var packets = new ConcurrentBag<byte[]>();
        Parallel.For(0, threads, new ParallelOptions { MaxDegreeOfParallelism = threads }, t =>
        {
            byte[] payload = Packets.VxlanIcmp(4096, (ushort)t, 100);
            for (int i = 0; i < perThread; i++)
            {
                byte[] buf = Packets.InBuffer(payload);
                Assert.Equal(EspSealStatus.Ok, pair.AtoB.Seal(buf, 64, payload.Length, Esp.NextHeaderUdp, out int n));
                packets.Add(buf.AsSpan(64 - Esp.HeaderLength, n).ToArray());
            }
        });
        var seqs = packets.Select(p => BinaryPrimitives.ReadUInt32BigEndian(p.AsSpan(4))).ToList();
        Assert.Equal(threads * perThread, seqs.Distinct().Count());

        // Deliver every packet twice, from several threads at once, drawn from one queue in sequence order with local
        // shuffling (so reordering stays far inside the 4032-packet window): exactly one copy of each is accepted.
        var rng = new Random(5);
        byte[][] all = packets.OrderBy(p => BinaryPrimitives.ReadUInt32BigEndian(p.AsSpan(4)))
            .SelectMany(p => new[] { p, (byte[])p.Clone() })
            .Chunk(64).SelectMany(c => c.OrderBy(_ => rng.Next())).ToArray();
        int next = -1, ok = 0, replayed = 0, other = 0;
        var accepted = new ConcurrentDictionary<uint, int>();
        var workers = Enumerable.Range(0, threads).Select(t => new Thread(() =>
        {
            int i;
            while ((i = Interlocked.Increment(ref next)) < all.Length)
            {
                uint seq = BinaryPrimitives.ReadUInt32BigEndian(all[i].AsSpan(4));
                switch (pair.B.Open(all[i], out _, out _, out _, out _))
                {
                    case EspOpenStatus.Ok:
                        Interlocked.Increment(ref ok);
                        accepted.AddOrUpdate(seq, 1, (_, c) => c + 1);
                        break;
                    case EspOpenStatus.Replayed: Interlocked.Increment(ref replayed); break;
                    case EspOpenStatus.TooOld: Interlocked.Increment(ref other); break; // a worker descheduled for > 4032 packets
                    default: throw new InvalidOperationException("unexpected drop");
                }
            }
        })).ToArray();
        foreach (var w in workers) w.Start();
        foreach (var w in workers) w.Join();
        // Each sequence number accepted exactly once; only a preempted worker can make a copy too old (never both copies
        // of one packet unless the other copy was accepted, since copies are adjacent in the queue).
        Assert.All(accepted.Values, c => Assert.Equal(1, c));
        Assert.Equal(2 * threads * perThread, ok + replayed + other);
        Assert.True(ok >= threads * perThread - other, $"ok {ok} replayed {replayed} too old {other}");
    }

    [Fact]
    public void Rotation_racing_with_sealers_and_openers_never_crashes_or_emits_a_bad_packet()
    {
        using var pair = new Pair(new EspOptions { RekeyInterval = TimeSpan.FromMinutes(1), CipherLanes = 2 });
        var sealedPackets = new ConcurrentQueue<byte[]>();
        int stop = 0;
        var failures = new ConcurrentQueue<string>();
        var sealers = Enumerable.Range(0, 2).Select(t => new Thread(() =>
        {
            byte[] payload = Packets.VxlanIcmp(4096, (ushort)t, 64);
            while (Volatile.Read(ref stop) == 0)
            {
                if (sealedPackets.Count > 20_000)
                {
                    Thread.Yield(); // let the opener catch up (bounded memory)
                    continue;
                }
                byte[] buf = Packets.InBuffer(payload);
                EspSealStatus s = pair.AtoB.Seal(buf, 64, payload.Length, Esp.NextHeaderUdp, out int n);
                if (s == EspSealStatus.Ok)
                    sealedPackets.Enqueue(buf.AsSpan(64 - Esp.HeaderLength, n).ToArray());
                else if (s != EspSealStatus.NoSa) // NoSa only if a thread held a retired SA for two whole ticks
                    failures.Enqueue("seal " + s);
            }
        })).ToArray();
        var opener = new Thread(() =>
        {
            while (Volatile.Read(ref stop) == 0 || !sealedPackets.IsEmpty)
            {
                if (!sealedPackets.TryDequeue(out byte[]? p))
                    continue;
                EspOpenStatus s = pair.B.Open(p, out _, out _, out _, out _);
                if (s is not (EspOpenStatus.Ok or EspOpenStatus.UnknownSpi or EspOpenStatus.TooOld))
                    failures.Enqueue("open " + s);
            }
        });
        foreach (var t in sealers) t.Start();
        opener.Start();
        for (int i = 1; i <= 40; i++)
        {
            DateTimeOffset now = Pair.T0 + TimeSpan.FromSeconds(30 * i); // a rotation every other tick
            pair.A.Tick(now);
            pair.B.Tick(now);
            Thread.Sleep(5);
        }
        Volatile.Write(ref stop, 1);
        foreach (var t in sealers) t.Join();
        opener.Join();
        Assert.Empty(failures);
        Assert.True(pair.A.Counters.Rotations >= 19);
        Assert.True(pair.B.InboundCount == 3);
    }
}
