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
        var workers = Enumerable.Range(0, threads).Select(t => new Thread(() =>
        {
            int i;
            while ((i = Interlocked.Increment(ref next)) < all.Length)
            {
                switch (pair.B.Open(all[i], out _, out _, out _, out _))
                {
                    case EspOpenStatus.Ok: Interlocked.Increment(ref ok); break;
                    case EspOpenStatus.Replayed: Interlocked.Increment(ref replayed); break;
                    default: Interlocked.Increment(ref other); break;
                }
            }
        })).ToArray();
        foreach (var w in workers) w.Start();
        foreach (var w in workers) w.Join();
        Assert.Equal(threads * perThread, ok);
        Assert.Equal(threads * perThread, replayed);
        Assert.Equal(0, other);
    }
}
