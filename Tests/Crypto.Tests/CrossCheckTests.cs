using System.Buffers.Binary;

namespace UserOverlay.Crypto.Tests;

/// <summary>Three independent GCM implementations (.NET AesGcm over OpenSSL, BouncyCastle's managed GCM, the intrinsics engine) must produce identical ESP packets.</summary>
public class CrossCheckTests
{
    private static readonly GcmBackend[] Backends = [GcmBackend.AesGcm, GcmBackend.BouncyCastle, GcmBackend.Intrinsics];

    [Theory]
    [InlineData(1, false)]
    [InlineData(2, true)]
    public void All_backends_produce_identical_packets_and_open_each_others(int seed, bool esn)
    {
        var rng = new Random(seed);
        for (int i = 0; i < 300; i++)
        {
            byte[] key = new byte[rng.Next(2) == 0 ? 16 : 32];
            rng.NextBytes(key);
            byte[] salt = new byte[4];
            rng.NextBytes(salt);
            ulong last = esn ? (ulong)rng.NextInt64(0, long.MaxValue / 2) : (ulong)rng.NextInt64(0, uint.MaxValue - 1);
            var p = new EspSaParameters { Spi = (uint)rng.Next(256, int.MaxValue), Key = key, Salt = salt, ExtendedSequenceNumbers = esn };
            int length = rng.Next(0, 1501);
            byte[] payload = new byte[length];
            rng.NextBytes(payload);
            byte next = (byte)rng.Next(256);

            var packets = new byte[Backends.Length][];
            var lengths = new int[Backends.Length];
            for (int b = 0; b < Backends.Length; b++)
            {
                using var sa = new OutboundSa(p with { Backend = Backends[b] }, last);
                packets[b] = Packets.InBuffer(payload, headroom: 16);
                Assert.Equal(EspSealStatus.Ok, sa.Seal(packets[b], 16, length, next, out lengths[b]));
            }
            for (int b = 1; b < Backends.Length; b++)
            {
                Assert.Equal(lengths[0], lengths[b]);
                Assert.True(packets[0].AsSpan(0, lengths[0]).SequenceEqual(packets[b].AsSpan(0, lengths[b])),
                    $"{Backends[b]} differs from {Backends[0]} (case {i}, {length} bytes, key {key.Length * 8} bits)");
            }
            Assert.Equal((uint)(last + 1), BinaryPrimitives.ReadUInt32BigEndian(packets[0].AsSpan(4)));

            // Each backend opens the packet of the next one.
            for (int b = 0; b < Backends.Length; b++)
            {
                int from = (b + 1) % Backends.Length;
                using var inbound = new InboundSa(p with { Backend = Backends[b] });
                inbound.AcceptForTest(last);
                Span<byte> packet = packets[from].AsSpan(0, lengths[from]);
                Assert.Equal(EspOpenStatus.Ok, inbound.Open(packet, out int o, out int l, out byte x));
                Assert.True(payload.AsSpan().SequenceEqual(packet.Slice(o, l)), $"{Backends[b]} opening {Backends[from]}'s packet, case {i}");
                Assert.Equal(next, x);
            }
        }
    }

    [Fact]
    public void Every_backend_rejects_the_same_tampering()
    {
        var p = new EspSaParameters { Spi = 0x999, Key = new byte[32], Salt = new byte[4] };
        foreach (GcmBackend backend in Enum.GetValues<GcmBackend>())
        {
            using var o = new OutboundSa(p with { Backend = backend });
            using var inbound = new InboundSa(p with { Backend = backend });
            byte[] payload = Packets.VxlanIcmp(1, 1);
            byte[] b = Packets.InBuffer(payload, headroom: 16);
            Assert.Equal(EspSealStatus.Ok, o.Seal(b, 16, payload.Length, 17, out int n));
            b[n - 5] ^= 1;
            Assert.Equal(EspOpenStatus.AuthenticationFailed, inbound.Open(b.AsSpan(0, n), out _, out _, out _));
        }
    }
}
