using System.Buffers.Binary;
using System.Net;
using System.Security.Cryptography;
using System.Text;

namespace UserOverlay.Crypto.Tests;

public class DerivationTests
{
    private static readonly NetworkKey Key32 = new("net1", Enumerable.Range(0, 32).Select(i => (byte)i).ToArray());
    private static readonly NetworkKey Key16 = new("net1", Enumerable.Range(0, 16).Select(i => (byte)i).ToArray());
    private const long E = 490896; // 2026-01-01T00:00Z with 1-hour epochs

    /// <summary>
    /// Known answers computed with an independent implementation (Python's hmac/hashlib, following Crypto/README.md).
    /// They pin the wire contract: a change here means hosts of different versions cannot talk.
    /// </summary>
    [Theory]
    [InlineData(32, "192.0.2.1", "192.0.2.2", E, false, "f9f81d37c0c08c6c13701b6f5392c3794969d14ac651895cf0b2c13cc5602852", "cd54be83", 0x68cec7c7u)]
    [InlineData(32, "192.0.2.2", "192.0.2.1", E, false, "7f702263e4ce9057e4faebf5e3013186cfbaf36e2b96604a9d005060cea47d65", "7a07643e", 0xbe4f4df9u)]
    [InlineData(16, "192.0.2.1", "192.0.2.2", E + 1, false, "ca7a47e3652d6b48557f5c74574353ea", "42c384e6", 0x65aa6325u)]
    [InlineData(16, "192.0.2.1", "192.0.2.2", E, true, "aae1cbc0a3a4827b2283650d5b96ccee", "22409ccf", 0xbbaecc8du)]
    [InlineData(32, "2001:db8::1", "2001:db8::2", -3, false, "a2acfe5435d5ccaa12bde499522cef797a8ba1bbbbd6122e148a8af50e8d6a68", "946a1e42", 0x0044fe20u)]
    public void Matches_known_answers(int keyLength, string src, string dst, long epoch, bool esn, string key, string salt, uint spi)
    {
        EspSaParameters p = EspKeyDerivation.Derive(keyLength == 32 ? Key32 : Key16, IPAddress.Parse(src), IPAddress.Parse(dst), epoch, esn);
        Assert.Equal(key, Hex.Of(p.Key));
        Assert.Equal(salt, Hex.Of(p.Salt));
        Assert.Equal(spi, p.Spi);
        Assert.Equal(esn, p.ExtendedSequenceNumbers);
    }

    /// <summary>RFC 5869 written out with HMAC-SHA256, following the README's recipe, against the library, for random inputs.</summary>
    [Fact]
    public void Matches_the_documented_recipe_for_random_inputs()
    {
        var rng = new Random(11);
        for (int i = 0; i < 200; i++)
        {
            byte[] secret = new byte[rng.Next(2) == 0 ? 16 : 32];
            rng.NextBytes(secret);
            var key = new NetworkKey("k", secret);
            var src = new IPAddress([192, 0, 2, (byte)rng.Next(1, 255)]);
            var dst = new IPAddress([192, 0, 2, (byte)rng.Next(1, 255)]);
            long epoch = rng.NextInt64(-1000, 10_000_000);
            bool esn = rng.Next(2) == 1;

            byte[] info = [.. Encoding.ASCII.GetBytes("UserOverlay ESP SA"), 0, (byte)(esn ? 1 : 0), (byte)secret.Length,
                4, .. src.GetAddressBytes(), 4, .. dst.GetAddressBytes(), .. BitConverter.GetBytes(BinaryPrimitives.ReverseEndianness(epoch))];
            byte[] prk = HMACSHA256.HashData(Encoding.ASCII.GetBytes("UserOverlay ESP v1"), secret);
            byte[] t1 = HMACSHA256.HashData(prk, (byte[])[.. info, 1]);
            byte[] t2 = HMACSHA256.HashData(prk, (byte[])[.. t1, .. info, 2]);
            byte[] okm = [.. t1, .. t2];
            uint spi = BinaryPrimitives.ReadUInt32BigEndian(okm.AsSpan(secret.Length + 4));
            if (spi < 256)
                spi |= 0x100;

            EspSaParameters p = EspKeyDerivation.Derive(key, src, dst, epoch, esn);
            Assert.Equal(Hex.Of(okm.AsSpan(0, secret.Length)), Hex.Of(p.Key));
            Assert.Equal(Hex.Of(okm.AsSpan(secret.Length, 4)), Hex.Of(p.Salt));
            Assert.Equal(spi, p.Spi);
        }
    }

    [Fact]
    public void Directions_epochs_keys_and_modes_get_different_sas_and_spis_avoid_reserved_values()
    {
        var a = Packets.HostA;
        var b = Packets.HostB;
        var all = new[]
        {
            EspKeyDerivation.Derive(Key32, a, b, E, false),
            EspKeyDerivation.Derive(Key32, b, a, E, false),
            EspKeyDerivation.Derive(Key32, a, b, E + 1, false),
            EspKeyDerivation.Derive(Key32, a, b, E, true),
            EspKeyDerivation.Derive(new NetworkKey("net1", Enumerable.Repeat((byte)1, 32).ToArray()), a, b, E, false),
        };
        Assert.Equal(all.Length, all.Select(p => p.Spi).Distinct().Count());
        Assert.Equal(all.Length, all.Select(p => Hex.Of(p.Key)).Distinct().Count());
        for (long e = 0; e < 5000; e++)
            Assert.True(EspKeyDerivation.Derive(Key16, a, b, e, false).Spi >= Esp.MinSpi);
    }

    [Fact]
    public void Ipv4_mapped_ipv6_addresses_derive_like_ipv4()
    {
        var p1 = EspKeyDerivation.Derive(Key16, Packets.HostA, Packets.HostB, E, false);
        var p2 = EspKeyDerivation.Derive(Key16, Packets.HostA.MapToIPv6(), Packets.HostB.MapToIPv6(), E, false);
        Assert.Equal(p1.Spi, p2.Spi);
        Assert.Equal(p1.Key, p2.Key);
    }

    [Fact]
    public void Both_ends_derive_the_same_sa()
    {
        using var pair = new Pair();
        OutboundSa o = pair.AtoB.CurrentOutbound!;
        var desc = pair.B.Describe().Single(d => d.Direction == EspDirection.Inbound && d.Epoch == o.Epoch);
        Assert.Equal(o.Spi, desc.Spi);
        Assert.Equal(o.KeyAndSaltHex(), desc.KeyAndSaltHex);
    }
}
