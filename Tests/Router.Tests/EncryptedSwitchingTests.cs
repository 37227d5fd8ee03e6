using System.Net;
using UserOverlay.Crypto;
using UserOverlay.Router.Testing;
using static UserOverlay.Router.Tests.InMemoryHosts;

namespace UserOverlay.Router.Tests;

/// <summary>Encrypted networks over in-memory doubles: only ESP on the wire, and every security invariant of encrypted networks,
/// in the default wire form (ESP-in-UDP to port 4500); transport mode (protocol 50) where it is named.</summary>
public class EncryptedSwitchingTests : InMemoryHostsTest
{
    /// <summary>Where ESP arrives in the default wire form: ESP-in-UDP, port 4500.</summary>
    private static VtepEndpoint EspAt(string ip) => new(Ip(ip), Esp.NatTraversalPort);

    private static readonly byte[] SecretKey = Enumerable.Range(0, 16).Select(i => (byte)i).ToArray();
    private static readonly byte[] OtherKey = Enumerable.Range(100, 32).Select(i => (byte)i).ToArray();
    public static readonly NetworkOptions Secret = new() { Name = "secret", Vni = 5000, Subnet = new Ipv4Prefix(Ip("198.18.2.0"), 24), Encrypted = true };
    public static readonly NetworkOptions Secret2 = new() { Name = "secret2", Vni = 5001, Subnet = new Ipv4Prefix(Ip("198.18.3.0"), 24), Encrypted = true };
    private static readonly MacAddress S1 = MacAddress.FromIPv4(IPAddress.Parse("198.18.2.11"));
    private static readonly MacAddress S2 = MacAddress.FromIPv4(IPAddress.Parse("198.18.2.12"));

    private static Func<RouterOptions, RouterOptions> Keys(params (string Net, byte[] Key)[] keys) => KeysIn(null, keys);

    /// <summary>Keys, and the wire form (null: the default).</summary>
    private static Func<RouterOptions, RouterOptions> KeysIn(EspEncapsulation? encapsulation, params (string Net, byte[] Key)[] keys) => o => o with
    {
        Encryption = new EncryptionOptions
        {
            Keys = new StaticNetworkKeySource(keys.Select(k => new NetworkKey(k.Net, k.Key))),
            Esp = encapsulation is { } e
                ? new EspOptions { SequenceStore = new InMemorySequenceStore(), Encapsulation = e }
                : new EspOptions { SequenceStore = new InMemorySequenceStore() },
        },
    };

    private (OverlayRouter R, InMemoryPlatform P) Host(int i, int[] peers, byte[]? key = null, EspEncapsulation? encapsulation = null, params EndpointOptions[] extra) =>
        Hosts.Add(i, peers, [Blue, Secret], [Endpoint("secret", $"s{i}", $"198.18.2.1{i}"), .. extra], KeysIn(encapsulation, ("secret", key ?? SecretKey)));

    [Theory]
    [InlineData(null, 1408, "udp", Esp.NatTraversalPort)]        // the default: ESP-in-UDP to port 4500
    [InlineData(EspEncapsulation.Udp, 1408, "udp", Esp.NatTraversalPort)]
    [InlineData(EspEncapsulation.Transport, 1416, "transport", 0)] // protocol 50: no port
    public void Encrypted_traffic_crosses_as_ESP_only_and_the_default_MTU_accounts_for_it(EspEncapsulation? encapsulation, int mtu, string form, int port)
    {
        var (ra, a) = Host(1, [2], encapsulation: encapsulation);
        var (rb, b) = Host(2, [1], encapsulation: encapsulation);
        Assert.Equal(mtu, ra.GetStatus().Networks.Single(n => n.Name == "secret").Mtu);
        Assert.Equal(1450, ra.GetStatus().Networks.Single(n => n.Name == "blue").Mtu);

        var payload = Packets.Udp4(S1, S2, "198.18.2.11", "198.18.2.12", 1000);
        a.Tap("s1").Inject(Packets.ArpRequest(S1, "198.18.2.11", "198.18.2.12"));
        Assert.NotNull(b.Tap("s2").WaitTake(Wait));
        b.Tap("s2").Inject(Packets.ArpReply(S2, "198.18.2.12", S1, "198.18.2.11"));
        Assert.NotNull(a.Tap("s1").WaitTake(Wait));
        a.Tap("s1").Inject(payload);
        Assert.Equal(payload, b.Tap("s2").WaitTake(Wait));

        Assert.Empty(Drain(a.Underlay!)); // nothing on the VXLAN socket at all
        var esp = Drain(a.EspUnderlay!);
        Assert.Equal(2, esp.Count);
        foreach (var (to, bytes) in esp)
        {
            Assert.Equal(new VtepEndpoint(Ip("192.0.2.2"), (ushort)port), to);
            Assert.True(System.Buffers.Binary.BinaryPrimitives.ReadUInt32BigEndian(bytes) >= 256); // an SPI
            Assert.Equal(-1, bytes.AsSpan().IndexOf(payload.AsSpan(42, 32))); // the frame's payload bytes do not appear
        }
        Assert.Equal(Esp.SealedLength(8 + 8 + payload.Length), esp[1].Payload.Length);
        var s = rb.GetStatus();
        Assert.NotNull(s.Esp);
        Assert.Equal(form, s.Esp!.Encapsulation);
        Assert.Equal(port, s.Esp.UdpPort);
        Assert.True(s.Esp.InboundSas >= 3); // e−1, e, e+1 from host 1
    }

    [Fact]
    public void Plaintext_VXLAN_for_an_encrypted_VNI_is_dropped()
    {
        var (ra, a) = Host(1, [2]);
        var forged = Packets.Vxlan(5000, Packets.Udp4(S2, S1, "198.18.2.12", "198.18.2.11"));
        Hosts.Underlay.Deliver(Vtep(2), Vtep(1), forged);
        Assert.Null(a.Tap("s1").WaitTake(Quiet));
        Assert.Equal(1, ra.GetStatus().Drop("secret", "plaintext_on_encrypted"));
    }

    [Fact]
    public void A_replayed_ESP_packet_never_reaches_an_endpoint()
    {
        var (_, a) = Host(1, [2]);
        var (rb, b) = Host(2, [1]);
        a.Tap("s1").Inject(Packets.Udp4(S1, MacAddress.Broadcast, "198.18.2.11", "198.18.2.255", 64));
        Assert.NotNull(b.Tap("s2").WaitTake(Wait));
        var sent = Drain(a.EspUnderlay!);
        var captured = Assert.Single(sent).Payload;
        for (int i = 0; i < 3; i++) Hosts.Underlay.Deliver(EspAt("192.0.2.1"), EspAt("192.0.2.2"), captured);
        Assert.Null(b.Tap("s2").WaitTake(Quiet));
        Assert.Equal(3, rb.GetStatus().GlobalDrop("esp_replayed"));

        var tampered = (byte[])captured.Clone();
        tampered[^20] ^= 1;
        tampered[7] ^= 0x40; // a fresh sequence number, so the ICV is what fails
        Hosts.Underlay.Deliver(EspAt("192.0.2.1"), EspAt("192.0.2.2"), tampered);
        Assert.Null(b.Tap("s2").WaitTake(Quiet));
        Assert.Equal(1, rb.GetStatus().GlobalDrop("esp_authentication_failed"));
    }

    [Fact]
    public void No_SA_no_send_and_a_wrong_key_opens_nothing()
    {
        // Host 2 has another key: its SPIs differ, so host 1's packets find no SA there.
        var (_, a) = Host(1, [2, 3], extra: []);
        var (rb, b) = Host(2, [1], key: OtherKey);
        a.Tap("s1").Inject(Packets.Udp4(S1, MacAddress.Broadcast, "198.18.2.11", "198.18.2.255", 64));
        Assert.Null(b.Tap("s2").WaitTake(Quiet));
        Assert.True(rb.GetStatus().GlobalDrop("esp_unknown_spi") >= 1);

        // A static FDB entry pointing at a VTEP that is not a peer: no SA, so nothing is sent, not even in plaintext.
        var (rc, c) = Hosts.Add(4, [2], [Secret], [Endpoint("secret", "s4", "198.18.2.14")],
            o => Keys(("secret", SecretKey))(o) with { StaticFdb = [new StaticFdbEntry { Network = "secret", Mac = S2, Vtep = Vtep(9) }] });
        c.Tap("s4").Inject(Packets.Udp4(MacAddress.FromIPv4(IPAddress.Parse("198.18.2.14")), S2, "198.18.2.14", "198.18.2.12"));
        SpinWait.SpinUntil(() => rc.GetStatus().Drop("secret", "esp_no_sa") == 1, Wait);
        Assert.Equal(1, rc.GetStatus().Drop("secret", "esp_no_sa"));
        Assert.Empty(Drain(c.Underlay!));
        Assert.Empty(Drain(c.EspUnderlay!));
    }

    [Fact]
    public void One_networks_key_never_opens_another_networks_VNI()
    {
        var (rb, b) = Hosts.Add(2, [1], [Secret, Secret2],
            [Endpoint("secret", "s2", "198.18.2.12"), new EndpointOptions { Network = "secret2", Netns = "t2", Address = Ip("198.18.3.12"), PrefixLength = 24 }],
            Keys(("secret", SecretKey), ("secret2", OtherKey)));
        // An insider holding only secret's key seals a VXLAN datagram for secret2's VNI.
        using var insider = new EspSecurityDatabase(IPAddress.Parse("192.0.2.1"),
            new StaticNetworkKeySource([new NetworkKey("secret", SecretKey)]),
            new EspOptions { SequenceStore = new InMemorySequenceStore() }, DateTimeOffset.UtcNow);
        var peer = insider.AddPeer("secret", IPAddress.Parse("192.0.2.2"));
        var inner = Packets.Udp4(S1, MacAddress.Broadcast, "198.18.3.11", "198.18.3.255");
        var buf = new byte[16 + 16 + inner.Length + 32];
        var vxlan = Packets.Vxlan(5001, inner);
        buf[16] = 0x12; buf[17] = 0xB5; buf[18] = 0x12; buf[19] = 0xB5; // UDP 4789 → 4789
        System.Buffers.Binary.BinaryPrimitives.WriteUInt16BigEndian(buf.AsSpan(20), (ushort)(8 + vxlan.Length));
        vxlan.CopyTo(buf, 24);
        Assert.Equal(EspSealStatus.Ok, peer.Seal(buf, 16, 8 + vxlan.Length, Esp.NextHeaderUdp, out int len));
        Hosts.Underlay.Deliver(EspAt("192.0.2.1"), EspAt("192.0.2.2"), buf.AsSpan(0, len));
        Assert.Null(b.Tap("t2").WaitTake(Quiet));
        Assert.Equal(1, rb.GetStatus().GlobalDrop("esp_wrong_network"));
    }

    [Fact]
    public void Invalid_encryption_options_are_reported_by_field()
    {
        var o = new RouterOptions
        {
            Underlay = Vtep(1),
            Networks = [Secret with { Mtu = 1430 }, Secret2, Blue],
            Encryption = new EncryptionOptions { Keys = new StaticNetworkKeySource([new NetworkKey("secret", SecretKey), new NetworkKey("secret2", SecretKey)]) },
        };
        var errors = o.Validate();
        Assert.Contains(errors, e => e.Path == "Networks[0].Mtu" && e.Message.Contains("1408")); // ESP-in-UDP, the default
        var transport = (o with { Encryption = o.Encryption! with { Esp = new EspOptions { Encapsulation = EspEncapsulation.Transport } } }).Validate();
        Assert.Contains(transport, e => e.Path == "Networks[0].Mtu" && e.Message.Contains("1416"));
        Assert.Contains(errors, e => e.Path == "Networks[1].Key" && e.Message.Contains("same key"));
        var noKeys = new RouterOptions { Underlay = Vtep(1), Networks = [Secret] }.Validate();
        Assert.Contains(noKeys, e => e.Path == "Networks[0].Encrypted");
    }
}
