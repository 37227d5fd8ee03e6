using System.Buffers.Binary;

namespace UserOverlay.Crypto.Tests;

/// <summary>Two independent GCM implementations (.NET AesGcm over OpenSSL, BouncyCastle's managed GCM) must produce identical ESP packets.</summary>
public class CrossCheckTests
{
    [Theory]
    [InlineData(1, false)]
    [InlineData(2, true)]
    public void AesGcm_and_BouncyCastle_produce_identical_packets_and_open_each_others(int seed, bool esn)
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

            using var dotnet = new OutboundSa(p with { Backend = GcmBackend.AesGcm }, last);
            using var bc = new OutboundSa(p with { Backend = GcmBackend.BouncyCastle }, last);
            byte[] b1 = Packets.InBuffer(payload, headroom: 16);
            byte[] b2 = Packets.InBuffer(payload, headroom: 16);
            Assert.Equal(EspSealStatus.Ok, dotnet.Seal(b1, 16, length, next, out int n1));
            Assert.Equal(EspSealStatus.Ok, bc.Seal(b2, 16, length, next, out int n2));
            Assert.Equal(n1, n2);
            Assert.True(b1.AsSpan(0, n1).SequenceEqual(b2.AsSpan(0, n2)), $"packets differ (case {i}, {length} bytes, key {key.Length * 8} bits)");

            // Each opens the other's packet.
            using var inDotnet = new InboundSa(p with { Backend = GcmBackend.AesGcm });
            using var inBc = new InboundSa(p with { Backend = GcmBackend.BouncyCastle });
            inDotnet.AcceptForTest(last);
            inBc.AcceptForTest(last);
            Assert.Equal(EspOpenStatus.Ok, inBc.Open(b1.AsSpan(0, n1), out int o1, out int l1, out byte x1));
            Assert.Equal(EspOpenStatus.Ok, inDotnet.Open(b2.AsSpan(0, n2), out int o2, out int l2, out byte x2));
            Assert.Equal(payload, b1.AsSpan(o1, l1).ToArray());
            Assert.Equal(payload, b2.AsSpan(o2, l2).ToArray());
            Assert.Equal(next, x1);
            Assert.Equal(next, x2);
            Assert.Equal((uint)(last + 1), BinaryPrimitives.ReadUInt32BigEndian(b1.AsSpan(4)));
        }
    }

    [Fact]
    public void Both_backends_reject_the_same_tampering()
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
