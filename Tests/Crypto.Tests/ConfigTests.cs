using System.Net;
using System.Security.Cryptography;
using System.Text.Json;

namespace UserOverlay.Crypto.Tests;

public class MtuTests
{
    [Fact]
    public void Worst_case_overhead_is_pad_3_header_8_iv_8_trailer_2_icv_16_plus_udp_8()
    {
        Assert.Equal(37, EspOverhead.WorstCase(EspEncapsulation.Transport));
        Assert.Equal(45, EspOverhead.WorstCase(EspEncapsulation.Udp));
        Assert.Equal(Esp.HeaderLength, 16);
        Assert.Equal(Esp.MaxTrailerLength, 21);
    }

    [Theory]
    [InlineData(1500, EspEncapsulation.Transport, 1416)]
    [InlineData(1500, EspEncapsulation.Udp, 1408)]
    [InlineData(9000, EspEncapsulation.Transport, 8916)]
    [InlineData(1280, EspEncapsulation.Transport, 1196)]
    public void Inner_mtu_is_the_largest_that_fits_and_every_shorter_frame_fits_too(int underlay, EspEncapsulation encap, int expected)
    {
        int mtu = EspOverhead.InnerMtu(underlay, encap);
        Assert.Equal(expected, mtu);
        int udp = encap == EspEncapsulation.Udp ? 8 : 0;
        for (int inner = 0; inner <= mtu; inner++)
            Assert.True(20 + udp + Esp.SealedLength(EspOverhead.EncapsulatedHeaders + inner) <= underlay, $"inner {inner}");
        Assert.True(20 + udp + Esp.SealedLength(EspOverhead.EncapsulatedHeaders + mtu + 1) > underlay);
        // The worst-case formula is a safe, slightly smaller bound.
        Assert.InRange(underlay - EspOverhead.VxlanOverhead - EspOverhead.WorstCase(encap), mtu - 3, mtu);
    }

    [Fact]
    public void A_configured_mtu_that_does_not_fit_is_an_error_that_says_why()
    {
        Assert.True(EspOverhead.TryValidateInnerMtu(1416, 1500, EspEncapsulation.Transport, out string? none));
        Assert.Null(none);
        Assert.False(EspOverhead.TryValidateInnerMtu(1450, 1500, EspEncapsulation.Transport, out string? error));
        Assert.Contains("mtu 1450 does not fit", error);
        Assert.Contains("1416", error);
        Assert.Contains("ICV", error);
        Assert.False(EspOverhead.TryValidateInnerMtu(1416, 1500, EspEncapsulation.Udp, out string? udpError));
        Assert.Contains("ESP-in-UDP", udpError);
    }
}

public class NetworkKeyTests
{
    [Theory]
    [InlineData(16)]
    [InlineData(32)]
    public void Base64_keys_of_16_and_32_bytes_are_accepted(int n)
    {
        byte[] secret = RandomNumberGenerator.GetBytes(n);
        var k = NetworkKey.FromBase64("net", " " + Convert.ToBase64String(secret) + "\n");
        Assert.Equal(secret, k.Secret.ToArray());
        Assert.DoesNotContain(Convert.ToHexStringLower(secret), k.ToString());
    }

    [Theory]
    [InlineData(24)]
    [InlineData(8)]
    [InlineData(0)]
    public void Other_lengths_are_rejected_with_the_reason(int n)
    {
        var ex = Assert.Throws<FormatException>(() => NetworkKey.FromBase64("net", Convert.ToBase64String(new byte[n])));
        Assert.Contains("16 (AES-128) or 32 (AES-256)", ex.Message);
        Assert.Throws<FormatException>(() => NetworkKey.FromBase64("net", "not base64!"));
    }

    [Fact]
    public void Key_files_hold_base64_or_raw_bytes()
    {
        string dir = Path.Combine(Path.GetTempPath(), "uo-crypto-" + Guid.NewGuid().ToString("n"));
        Directory.CreateDirectory(dir);
        try
        {
            byte[] secret = RandomNumberGenerator.GetBytes(32);
            File.WriteAllText(Path.Combine(dir, "b64"), Convert.ToBase64String(secret) + "\n");
            File.WriteAllBytes(Path.Combine(dir, "raw"), secret);
            File.WriteAllBytes(Path.Combine(dir, "bad"), new byte[20]);
            Assert.Equal(secret, NetworkKey.FromFile("n", Path.Combine(dir, "b64")).Secret.ToArray());
            Assert.Equal(secret, NetworkKey.FromFile("n", Path.Combine(dir, "raw")).Secret.ToArray());
            Assert.Throws<FormatException>(() => NetworkKey.FromFile("n", Path.Combine(dir, "bad")));
        }
        finally
        {
            Directory.Delete(dir, true);
        }
    }
}

public class DescriptionTests
{
    private static readonly NetworkKey Key = new("net1", Enumerable.Range(0, 32).Select(i => (byte)i).ToArray());

    [Fact]
    public void Enumerate_lists_both_directions_for_every_accepted_epoch_and_mirrors_the_peer()
    {
        var options = new EspOptions();
        var onA = EspSaDescription.Enumerate(Packets.HostA, [Packets.HostB, Packets.HostA], [Key], Pair.T0, options);
        var onB = EspSaDescription.Enumerate(Packets.HostB, [Packets.HostA], [Key], Pair.T0, options);
        Assert.Equal(6, onA.Count);
        Assert.Equal(2, onA.Count(d => d.Current));
        foreach (var d in onA)
        {
            var mirror = onB.Single(x => x.Spi == d.Spi);
            Assert.NotEqual(d.Direction, mirror.Direction);
            Assert.Equal(d.KeyAndSaltHex, mirror.KeyAndSaltHex);
            Assert.Equal(d.Source, mirror.Source);
            Assert.Equal("rfc4106(gcm(aes))", d.Algorithm);
            Assert.Equal(64 + 8, d.KeyAndSaltHex.Length);
            Assert.Equal(d.EpochStart + options.RekeyInterval, d.EpochEnd);
        }
        var current = onA.Single(d => d.Current && d.Direction == EspDirection.Outbound);
        Assert.Equal("192.0.2.1", current.Source);
        Assert.Equal("192.0.2.2", current.Destination);
        Assert.Equal(Pair.T0, current.EpochStart);
    }

    [Fact]
    public void The_live_database_describes_the_sas_it_uses()
    {
        using var pair = new Pair();
        var live = pair.A.Describe();
        var outbound = live.Single(d => d.Direction == EspDirection.Outbound);
        Assert.Equal(pair.AtoB.CurrentOutbound!.Spi, outbound.Spi);
        Assert.Equal(3, live.Count(d => d.Direction == EspDirection.Inbound));
        var derived = EspSaDescription.Enumerate(Packets.HostA, [Packets.HostB], [pair.Keys.Keys.Single()], Pair.T0, new EspOptions());
        Assert.Contains(derived, d => d.Spi == outbound.Spi && d.KeyAndSaltHex == outbound.KeyAndSaltHex);
    }

    [Fact]
    public void Formats_like_ip_xfrm_and_wireshark_and_serialises_to_json()
    {
        var d = EspSaDescription.Enumerate(Packets.HostA, [Packets.HostB], [Key], Pair.T0,
            new EspOptions { Encapsulation = EspEncapsulation.Udp }).First(x => x.Current && x.Direction == EspDirection.Outbound);
        string xfrm = d.ToXfrmString();
        Assert.StartsWith("src 192.0.2.1 dst 192.0.2.2\n\tproto esp spi 0x", xfrm);
        Assert.Contains($"\taead rfc4106(gcm(aes)) 0x{d.KeyHex}{d.SaltHex} 128\n", xfrm);
        Assert.Contains("encap type espinudp sport 4500 dport 4500", xfrm);
        Assert.Equal($"\"IPv4\",\"192.0.2.1\",\"192.0.2.2\",\"{d.SpiHex}\",\"AES-GCM with 16 octet ICV [RFC4106]\",\"0x{d.KeyHex}{d.SaltHex}\",\"NULL\",\"\"", d.ToWiresharkUat());
        string json = JsonSerializer.Serialize(d);
        Assert.Contains("\"SpiHex\":\"" + d.SpiHex + "\"", json);
        Assert.Contains("\"Algorithm\":\"rfc4106(gcm(aes))\"", json);
    }
}
