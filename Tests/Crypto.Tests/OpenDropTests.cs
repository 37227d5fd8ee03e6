using System.Buffers.Binary;
using System.Security.Cryptography;

namespace UserOverlay.Crypto.Tests;

/// <summary>Security invariants on receive: every bad packet is dropped with its reason and counted; nothing throws.</summary>
public class OpenDropTests
{
    private static (byte[] Buffer, int EspOffset, int EspLength) SealOne(Pair pair, ushort icmpSeq = 1, int icmpData = 56)
    {
        byte[] payload = Packets.VxlanIcmp(4096, icmpSeq, icmpData);
        byte[] buffer = Packets.InBuffer(payload);
        Assert.Equal(EspSealStatus.Ok, pair.AtoB.Seal(buffer, 64, payload.Length, Esp.NextHeaderUdp, out int n));
        return (buffer, 64 - Esp.HeaderLength, n);
    }

    [Fact]
    public void Sealed_packets_open_to_the_original_payload_and_name_their_sa()
    {
        using var pair = new Pair();
        for (int data = 0; data < 80; data++)
        {
            byte[] payload = Packets.VxlanIcmp(4096, (ushort)data, data);
            byte[] buffer = Packets.InBuffer(payload);
            Assert.Equal(EspSealStatus.Ok, pair.AtoB.Seal(buffer, 64, payload.Length, Esp.NextHeaderUdp, out int n));
            Assert.Equal(Esp.SealedLength(payload.Length), n);
            Assert.Equal(0, (n - Esp.HeaderLength - Esp.IcvLength) % 4);
            Assert.NotEqual(Hex.Of(payload), Hex.Of(buffer.AsSpan(64, payload.Length))); // encrypted in place

            Span<byte> esp = buffer.AsSpan(64 - Esp.HeaderLength, n);
            Assert.Equal(EspOpenStatus.Ok, pair.B.Open(esp, out int off, out int len, out byte next, out InboundSa? sa));
            Assert.Equal(Hex.Of(payload), Hex.Of(esp.Slice(off, len)));
            Assert.Equal(Esp.NextHeaderUdp, next);
            Assert.Equal(Pair.KeyId, sa!.KeyId);
            Assert.Equal(Packets.HostA, sa.Source);
            Assert.Equal(Packets.HostB, sa.Destination);
        }
    }

    [Fact]
    public void Wrong_icv_or_ciphertext_is_dropped_as_authentication_failure()
    {
        using var pair = new Pair();
        var (b1, o1, n1) = SealOne(pair, 1);
        b1[o1 + n1 - 1] ^= 0x80; // ICV
        Assert.Equal(EspOpenStatus.AuthenticationFailed, pair.B.Open(b1.AsSpan(o1, n1), out _, out _, out _, out _));
        var (b2, o2, n2) = SealOne(pair, 2);
        b2[o2 + 20] ^= 0x01; // ciphertext
        Assert.Equal(EspOpenStatus.AuthenticationFailed, pair.B.Open(b2.AsSpan(o2, n2), out _, out _, out _, out _));
        var (b3, o3, n3) = SealOne(pair, 3);
        b3[o3 + 4 + 3] ^= 0x04; // sequence number (in the AAD), still fresh
        Assert.Equal(EspOpenStatus.AuthenticationFailed, pair.B.Open(b3.AsSpan(o3, n3), out _, out _, out _, out _));
        Assert.Equal(3, pair.B.Counters.Dropped(EspOpenStatus.AuthenticationFailed));

        // A forged packet does not move the window: the genuine packets still open afterwards.
        var (b4, o4, n4) = SealOne(pair, 4);
        Assert.Equal(EspOpenStatus.Ok, pair.B.Open(b4.AsSpan(o4, n4), out _, out _, out _, out _));
    }

    [Fact]
    public void Unknown_spi_is_dropped()
    {
        using var pair = new Pair();
        var (b, o, n) = SealOne(pair);
        BinaryPrimitives.WriteUInt32BigEndian(b.AsSpan(o), 0xdeadbeef);
        Assert.Equal(EspOpenStatus.UnknownSpi, pair.B.Open(b.AsSpan(o, n), out _, out _, out _, out _));
        Assert.Equal(1, pair.B.Counters.Dropped(EspOpenStatus.UnknownSpi));
        // A's own outbound SPI is not an inbound SA of A.
        var (b2, o2, n2) = SealOne(pair);
        Assert.Equal(EspOpenStatus.UnknownSpi, pair.A.Open(b2.AsSpan(o2, n2), out _, out _, out _, out _));
    }

    [Fact]
    public void Replayed_and_too_old_sequence_numbers_are_dropped()
    {
        using var pair = new Pair();
        var (b, o, n) = SealOne(pair);
        byte[] copy = b.AsSpan(o, n).ToArray();
        Assert.Equal(EspOpenStatus.Ok, pair.B.Open(b.AsSpan(o, n), out _, out _, out _, out _));
        Assert.Equal(EspOpenStatus.Replayed, pair.B.Open(copy.AsSpan().ToArray(), out _, out _, out _, out _));

        var (old, oo, on) = SealOne(pair); // seq 2, held back
        for (int i = 0; i < Esp.ReplayWindowSize + 10; i++)
        {
            var (x, xo, xn) = SealOne(pair);
            Assert.Equal(EspOpenStatus.Ok, pair.B.Open(x.AsSpan(xo, xn), out _, out _, out _, out _));
        }
        Assert.Equal(EspOpenStatus.TooOld, pair.B.Open(old.AsSpan(oo, on), out _, out _, out _, out _));
        Assert.Equal(1, pair.B.Counters.Dropped(EspOpenStatus.Replayed));
        Assert.Equal(1, pair.B.Counters.Dropped(EspOpenStatus.TooOld));
    }

    [Fact]
    public void Reordering_inside_the_window_is_accepted()
    {
        using var pair = new Pair();
        var held = new List<byte[]>();
        for (int i = 0; i < 1500; i++)
        {
            var (b, o, n) = SealOne(pair, (ushort)i);
            held.Add(b.AsSpan(o, n).ToArray());
        }
        var rng = new Random(7);
        foreach (byte[] p in held.OrderBy(_ => rng.Next()))
            Assert.Equal(EspOpenStatus.Ok, pair.B.Open(p, out _, out _, out _, out _));
    }

    [Fact]
    public void Truncated_and_misaligned_packets_are_dropped()
    {
        using var pair = new Pair();
        var (b, o, n) = SealOne(pair);
        for (int len = 0; len < Esp.MinPacketLength; len++)
            Assert.Equal(EspOpenStatus.Truncated, pair.B.Open(b.AsSpan(o, len), out _, out _, out _, out _));
        Assert.Equal(EspOpenStatus.Malformed, pair.B.Open(b.AsSpan(o, n - 1), out _, out _, out _, out _));
        Assert.Equal(EspOpenStatus.Malformed, pair.B.Open(b.AsSpan(o, n - 2), out _, out _, out _, out _));
        Assert.Equal(Esp.MinPacketLength, pair.B.Counters.Dropped(EspOpenStatus.Truncated));
        Assert.Equal(2, pair.B.Counters.Dropped(EspOpenStatus.Malformed));
        // Cutting a whole 4-byte word keeps alignment but breaks the ICV.
        Assert.Equal(EspOpenStatus.AuthenticationFailed, pair.B.Open(b.AsSpan(o, n - 4), out _, out _, out _, out _));
    }

    /// <summary>An authentic packet (encrypted with the right key by hand, with AesGcm) whose trailer is wrong.</summary>
    private static byte[] RawEsp(byte[] key, byte[] salt, uint spi, uint seq, byte[] plaintextWithTrailer)
    {
        byte[] p = new byte[Esp.HeaderLength + plaintextWithTrailer.Length + Esp.IcvLength];
        BinaryPrimitives.WriteUInt32BigEndian(p, spi);
        BinaryPrimitives.WriteUInt32BigEndian(p.AsSpan(4), seq);
        BinaryPrimitives.WriteUInt64BigEndian(p.AsSpan(8), seq);
        byte[] nonce = [.. salt, .. p.AsSpan(8, 8)];
        using var aes = new AesGcm(key, 16);
        aes.Encrypt(nonce, plaintextWithTrailer, p.AsSpan(Esp.HeaderLength, plaintextWithTrailer.Length),
            p.AsSpan(Esp.HeaderLength + plaintextWithTrailer.Length), p.AsSpan(0, 8));
        return p;
    }

    [Theory]
    [InlineData("11223344556677 05 0203 02 11", EspOpenStatus.BadPadding)]   // pad bytes must be 1, 2
    [InlineData("112233 ff 11", EspOpenStatus.BadPadding)]                  // pad length beyond the packet
    [InlineData("1122 0102 02 11", EspOpenStatus.Ok)]                        // 4 bytes: payload 2, pad 2
    [InlineData("11223344556677880102030405060708 08 11", EspOpenStatus.BadPadding)] // 18 bytes: not 4-aligned, so Malformed (checked before decryption)
    [InlineData("112233445566778801020304050607 07 11" + "00", EspOpenStatus.Malformed)]
    [InlineData("1122334455667788 0102030405060708090a 0a 11", EspOpenStatus.Ok)] // long (non-minimal) padding is accepted
    public void Bad_padding_is_dropped_after_authentication(string plaintext, EspOpenStatus expected)
    {
        byte[] key = RandomNumberGenerator.GetBytes(16);
        byte[] salt = RandomNumberGenerator.GetBytes(4);
        byte[] pt = Hex.Bytes(plaintext.Replace(" ", ""));
        if (expected != EspOpenStatus.Malformed && pt.Length % 4 != 0)
            expected = EspOpenStatus.Malformed;
        using var sa = new InboundSa(new EspSaParameters { Spi = 0x4242, Key = key, Salt = salt });
        byte[] packet = RawEsp(key, salt, 0x4242, 1, pt);
        Assert.Equal(expected, sa.Open(packet, out _, out int len, out byte next));
        if (expected == EspOpenStatus.Ok)
        {
            Assert.Equal(0x11, next);
            Assert.Equal(pt.Length - 2 - pt[^2], len);
        }
    }

    [Fact]
    public void Random_garbage_and_mutations_never_crash_and_never_open()
    {
        using var pair = new Pair();
        var rng = new Random(1234);
        int ok = 0;
        for (int i = 0; i < 3000; i++)
        {
            var (b, o, n) = SealOne(pair, (ushort)i, rng.Next(0, 200));
            byte[] p = b.AsSpan(o, n).ToArray();
            switch (i % 4)
            {
                case 0:
                    rng.NextBytes(p.AsSpan(4)); // keep the SPI, randomise the rest
                    break;
                case 1:
                    p[rng.Next(p.Length)] ^= (byte)(1 << rng.Next(8));
                    break;
                case 2:
                    p = p.AsSpan(0, rng.Next(p.Length)).ToArray();
                    break;
                default:
                    rng.NextBytes(p);
                    break;
            }
            if (pair.B.Open(p, out _, out _, out _, out _) == EspOpenStatus.Ok)
                ok++;
        }
        Assert.Equal(0, ok);
    }
}
