using System.Text.Json;

namespace UserOverlay.Crypto.Tests;

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
    public void The_default_wire_form_is_ESP_in_UDP_on_port_4500_and_transport_mode_has_no_encap()
    {
        Assert.Equal(EspEncapsulation.Udp, EspOptions.DefaultEncapsulation);
        var byDefault = EspSaDescription.Enumerate(Packets.HostA, [Packets.HostB], [Key], Pair.T0, new EspOptions()).First(x => x.Current);
        Assert.Equal(EspEncapsulation.Udp, byDefault.Encapsulation);
        Assert.Equal(Esp.NatTraversalPort, byDefault.UdpPort);
        Assert.Contains("encap type espinudp sport 4500 dport 4500", byDefault.ToXfrmString());
        var transport = EspSaDescription.Enumerate(Packets.HostA, [Packets.HostB], [Key], Pair.T0,
            new EspOptions { Encapsulation = EspEncapsulation.Transport }).First(x => x.Current);
        Assert.Equal(0, transport.UdpPort);
        Assert.DoesNotContain("encap", transport.ToXfrmString());
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
