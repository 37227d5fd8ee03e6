using UserOverlay.Cli.Config;

namespace UserOverlay.Cli.Tests;

/// <summary>Loading the YAML configuration: the documented example, defaults, and every error naming file, line and field.</summary>
public class ConfigTests
{
    private const string Valid = """
        underlay:
          address: 192.0.2.1        # this host's VTEP address
          port: 4789
        peers: [192.0.2.2, "192.0.2.3:4790"]
        metrics: 127.0.0.1:9464
        networks:
          - { name: blue, vni: 4097, subnet: 198.18.0.0/24, mtu: 1450 }
          - { name: red, vni: 4098, subnet: 198.18.0.0/24 }
        endpoints:
          - network: blue
            netns: c1
            interface: eth0
            address: 198.18.0.11/24
            mac: 02:00:c6:12:00:0b
          - { network: red, netns: c1, interface: eth1, address: 198.18.0.11/24 }
        fdb:
          - { network: blue, mac: "02:42:c6:12:00:63", vtep: 192.0.2.9, address: 198.18.0.99 }
        """;

    private static HostConfig Parse(string yaml) => ConfigLoader.Parse(yaml, "host.yaml", checkNamespaces: false);

    private static IReadOnlyList<ConfigError> Errors(string yaml) =>
        Assert.Throws<ConfigException>(() => Parse(yaml)).Errors;

    [Fact]
    public void The_documented_example_loads()
    {
        var c = Parse(Valid);
        var o = c.Router;
        Assert.Equal("192.0.2.1:4789", o.Underlay.ToString());
        Assert.Equal(new[] { "192.0.2.2:4789", "192.0.2.3:4790" }, o.Peers.Select(p => p.ToString()));
        Assert.Equal("127.0.0.1:9464", c.Metrics!.ToString());
        Assert.Equal(2, o.Networks.Count);
        Assert.Null(o.Networks[1].Mtu);
        Assert.Equal(1450, o.MtuOf(o.Networks[1])); // default: 1500 − 50
        Assert.Equal("198.18.0.0/24", o.Networks[0].Subnet.ToString());
        Assert.Equal("eth1", o.Endpoints[1].Interface);
        Assert.Equal("02:00:c6:12:00:0b", o.Endpoints[1].EffectiveMac.ToString()); // derived from 198.18.0.11
        Assert.True(o.Learning);
        Assert.Equal(TimeSpan.FromSeconds(300), o.FdbAging);
        Assert.Equal("02:42:c6:12:00:63", o.StaticFdb[0].Mac.ToString());
        Assert.Empty(o.Validate());
    }

    [Theory]
    [InlineData("host1.yaml", "192.0.2.1")]
    [InlineData("host2.yaml", "192.0.2.2")]
    [InlineData("host3.yaml", "192.0.2.3")]
    public void The_sample_configurations_are_valid(string file, string vtep)
    {
        var c = ConfigLoader.Load(Path.Combine(UserOverlay.Testing.Common.Repo.Root, "samples", "static", file), checkNamespaces: false);
        Assert.Equal(vtep + ":4789", c.Router.Underlay.ToString());
        Assert.Equal(2, c.Router.Peers.Count);
        Assert.Equal(["blue", "red"], c.Router.Networks.Select(n => n.Name));
        Assert.Equal(2, c.Router.Endpoints.Count);
    }

    [Fact]
    public void A_network_has_a_gateway_only_when_the_file_names_one()
    {
        var o = Parse("""
            underlay: { address: 192.0.2.1 }
            networks:
              - { name: plain, vni: 1, subnet: 198.18.0.0/24 }
              - { name: gw, vni: 2, subnet: 198.18.1.0/24, gateway: 198.18.1.254, internal: true }
            endpoints: [ { network: plain, netns: c1, address: 198.18.0.1/24 } ]
            """).Router;
        Assert.Null(o.Networks[0].Gateway); // an endpoint at the first address stays valid, as before gateways existed
        Assert.Equal((UserOverlay.Router.Ipv4Prefix.TryParseAddress("198.18.1.254", out uint g) ? g : 0, true), (o.Networks[1].Gateway, o.Networks[1].Internal));
        var bad = Errors(Valid.Replace("subnet: 198.18.0.0/24, mtu: 1450", "subnet: 198.18.0.0/24, mtu: 1450, gateway: 198.18.9.1"));
        Assert.Contains(bad, e => e.Path == "networks[0].gateway" && e.Line == 7);
    }

    [Fact]
    public void Defaults_apply_to_a_minimal_file()
    {
        var o = Parse("""
            underlay: { address: 192.0.2.1 }
            networks: [ { name: n, vni: 1, subnet: 198.18.0.0/16 } ]
            endpoints: [ { network: n, netns: c1, address: 198.18.1.2/16 } ]
            fdb_aging: 5m
            """).Router;
        Assert.Equal(4789, o.Underlay.Port);
        Assert.Equal("eth0", o.Endpoints[0].Interface);
        Assert.Empty(o.Peers);
        Assert.Equal(TimeSpan.FromMinutes(5), o.FdbAging);
        Assert.True(o.TapOffload);
        Assert.True(o.IoUring);
        Assert.Equal(0, o.Queues); // one per CPU
        Assert.False(Parse("""
            underlay: { address: 192.0.2.1 }
            io_uring: false
            networks: [ { name: n, vni: 1, subnet: 198.18.0.0/16 } ]
            """).Router.IoUring);
        Assert.False(Parse("""
            underlay: { address: 192.0.2.1 }
            offload: false
            networks: [ { name: n, vni: 1, subnet: 198.18.0.0/16 } ]
            """).Router.TapOffload);
        Assert.Equal(1, Parse("""
            underlay: { address: 192.0.2.1 }
            queues: 1
            networks: [ { name: n, vni: 1, subnet: 198.18.0.0/16 } ]
            """).Router.Queues);
    }

    public static TheoryData<string, string, int, string> BadFiles => new()
    {
        { "bad CIDR", Valid.Replace("198.18.0.0/24, mtu", "198.18.0.0/33, mtu"), 7, "networks[0].subnet" },
        { "host bits in subnet", Valid.Replace("198.18.0.0/24, mtu", "198.18.0.1/24, mtu"), 7, "networks[0].subnet" },
        { "duplicate VNI", Valid.Replace("vni: 4098", "vni: 4097"), 8, "networks[1].vni" },
        { "VNI out of range", Valid.Replace("vni: 4098", "vni: 16777216"), 8, "networks[1].vni" },
        { "duplicate network name", Valid.Replace("name: red", "name: blue"), 8, "networks[1].name" },
        { "endpoint on an unknown network", Valid.Replace("network: red, netns", "network: green, netns"), 15, "endpoints[1].network" },
        { "address outside the subnet", Valid.Replace("address: 198.18.0.11/24\n", "address: 198.19.0.11/24\n"), 13, "endpoints[0].address" },
        { "address not an address", Valid.Replace("address: 198.18.0.11/24\n", "address: banana/24\n"), 13, "endpoints[0].address" },
        { "bad MAC", Valid.Replace("mac: 02:00:c6:12:00:0b", "mac: 02:00:c6:12:00"), 14, "endpoints[0].mac" },
        { "multicast MAC", Valid.Replace("mac: 02:00:c6:12:00:0b", "mac: 01:00:5e:00:00:01"), 14, "endpoints[0].mac" },
        { "unknown field", Valid.Replace("  port: 4789", "  prot: 4789"), 3, "underlay.prot" },
        { "missing underlay address", Valid.Replace("  address: 192.0.2.1        # this host's VTEP address\n", ""), 2, "underlay.address" },
        { "bad peer", Valid.Replace("192.0.2.2,", "192.0.2.300,"), 4, "peers[0]" },
        { "peer is this host", Valid.Replace("192.0.2.2,", "192.0.2.1,"), 4, "peers[0]" },
        { "port out of range", Valid.Replace("port: 4789", "port: 70000"), 3, "underlay.port" },
        { "MTU too large", Valid.Replace("mtu: 1450", "mtu: 65000"), 7, "networks[0].mtu" },
        { "same interface twice in one namespace", Valid.Replace("interface: eth1", "interface: eth0"), 15, "endpoints[1].interface" },
        { "bad metrics address", Valid.Replace("127.0.0.1:9464", "localhost"), 5, "metrics" },
        { "negative queue count", Valid.Replace("metrics: 127.0.0.1:9464", "queues: -1"), 5, "queues" },
        { "static entry on unknown network", Valid.Replace("network: blue, mac:", "network: pink, mac:"), 17, "fdb[0].network" },
        { "syntax error", Valid.Replace("peers: [192.0.2.2,", "peers: [192.0.2.2,,,"), 4, "(syntax)" },
    };

    [Theory]
    [MemberData(nameof(BadFiles))]
    public void Errors_name_file_line_and_field(string what, string yaml, int line, string path)
        => ConfigAssert.ErrorAt(Errors(yaml), what, line, path);

    private const string Minimal = """
        underlay: { address: 192.0.2.1 }
        networks: [ { name: n, vni: 1, subnet: 198.18.0.0/16 } ]
        """;

    [Fact]
    public void A_file_without_networks_runs_a_router_waiting_to_be_told()
    {
        var config = Parse("underlay: { address: 192.0.2.1 }");
        Assert.Empty(config.Router.Networks);
        Assert.Empty(config.Router.Endpoints);
        var bad = Errors("underlay: { address: 192.0.2.1 }\nendpoints: [ { network: blue, netns: c1, address: 198.18.0.5/24 } ]");
        Assert.Contains(bad, e => e.Path.StartsWith("endpoints[0]", StringComparison.Ordinal) && e.Message.Contains("blue", StringComparison.Ordinal));
    }

    [Theory]
    [InlineData(null, 5000)]          // the default
    [InlineData("2s", 2000)]
    [InlineData("750ms", 750)]
    [InlineData("0", 0)]               // off
    [InlineData("off", 0)]
    public void Fdb_unanswered_sets_the_silent_VTEP_window(string? value, int ms)
    {
        var o = Parse(value is null ? Minimal : Minimal + $"\nfdb_unanswered: {value}").Router;
        Assert.Equal(TimeSpan.FromMilliseconds(ms), o.UnansweredAging);
    }

    [Theory]
    [InlineData("-1s", "is not a duration")]
    [InlineData("soon", "is not a duration")]
    [InlineData("100ms", "must be 0 (off) or at least 500 ms")] // the library's rule, mapped back to the field
    public void A_bad_fdb_unanswered_names_the_field_and_its_line(string value, string message)
    {
        var e = Assert.Single(Errors(Minimal + $"\nfdb_unanswered: {value}"));
        Assert.Equal("fdb_unanswered", e.Path);
        Assert.Equal(3, e.Line);
        Assert.Contains(message, e.Message);
    }

    [Fact]
    public void Every_error_is_reported_at_once()
    {
        var errors = Errors(Valid.Replace("198.18.0.0/24, mtu", "198.18.0.0/33, mtu").Replace("vni: 4098", "vni: 0").Replace("  port: 4789", "  prot: 1"));
        Assert.True(errors.Count >= 3, string.Join("\n", errors));
    }

    private const string Encrypted = """
        underlay: { address: 192.0.2.1, mtu: 1500 }
        peers: [192.0.2.2]
        encryption: { esp: udp, udp_port: 4600, rekey_interval: 10m, state_dir: /tmp/uo-state }
        networks:
          - { name: secret, vni: 5000, subnet: 198.18.2.0/24, encrypted: true, key: "AAECAwQFBgcICQoLDA0ODw==" }
          - { name: blue, vni: 4097, subnet: 198.18.0.0/24 }
        """;

    [Fact]
    public void An_encryption_section_gives_esp_without_an_encrypted_network_and_its_absence_gives_none()
    {
        // With the section, ESP is ready for encrypted networks created at run time (their keys join this source).
        var withSection = Parse("""
            underlay: { address: 192.0.2.1 }
            encryption: { state_dir: /tmp/uo-state }
            networks: [ { name: blue, vni: 4097, subnet: 198.18.0.0/24 } ]
            """).Router;
        Assert.IsType<UserOverlay.Crypto.StaticNetworkKeySource>(withSection.Encryption!.Keys);
        Assert.False(withSection.Encryption.Keys.TryGetKey("blue", out _));
        // Without it (and no encrypted network), a plain host opens no ESP socket.
        Assert.Null(Parse("""
            underlay: { address: 192.0.2.1 }
            networks: [ { name: blue, vni: 4097, subnet: 198.18.0.0/24 } ]
            """).Router.Encryption);
    }

    [Fact]
    public void Encrypted_networks_load_with_their_keys_and_esp_settings()
    {
        var c = Parse(Encrypted);
        var o = c.Router;
        Assert.True(o.Networks[0].Encrypted);
        Assert.False(o.Networks[1].Encrypted);
        Assert.Equal(UserOverlay.Crypto.EspEncapsulation.Udp, o.Encryption!.Esp.Encapsulation);
        Assert.Equal(4600, o.Encryption.Esp.UdpPort);
        Assert.Equal(TimeSpan.FromMinutes(10), o.Encryption.Esp.RekeyInterval);
        Assert.True(o.Encryption.Keys.TryGetKey("secret", out var key));
        Assert.Equal(16, key.Secret.Length);
        Assert.Equal(1408, o.MtuOf(o.Networks[0])); // ESP-in-UDP default
        Assert.Equal("/tmp/uo-state", c.EspStateDirectory);
    }

    [Theory]
    [InlineData("", UserOverlay.Crypto.EspEncapsulation.Udp, 4500, 1408)] // no esp: ESP-in-UDP, the default
    [InlineData("esp: udp, ", UserOverlay.Crypto.EspEncapsulation.Udp, 4500, 1408)]
    [InlineData("esp: transport, ", UserOverlay.Crypto.EspEncapsulation.Transport, 4500, 1416)] // Docker's protocol 50
    [InlineData("esp: Transport, udp_port: 4600, ", UserOverlay.Crypto.EspEncapsulation.Transport, 4600, 1416)]
    public void The_wire_form_defaults_to_ESP_in_UDP_and_the_default_MTU_follows_it(string esp, UserOverlay.Crypto.EspEncapsulation form, int port, int mtu)
    {
        var o = Parse($$"""
            underlay: { address: 192.0.2.1 }
            encryption: { {{esp}}state_dir: /tmp/uo-state }
            networks:
              - { name: secret, vni: 5000, subnet: 198.18.2.0/24, encrypted: true, key: "AAECAwQFBgcICQoLDA0ODw==" }
              - { name: blue, vni: 4097, subnet: 198.18.0.0/24 }
            """).Router;
        Assert.Equal(form, o.Encryption!.Esp.Encapsulation);
        Assert.Equal(port, o.Encryption.Esp.UdpPort);
        Assert.Equal(mtu, o.MtuOf(o.Networks[0]));
        Assert.Equal(1450, o.MtuOf(o.Networks[1])); // a plain network keeps VXLAN's 1450 either way
        Assert.Empty(o.Validate());
    }

    public static TheoryData<string, string, int, string> BadEncryption => new()
    {
        { "no key", Encrypted.Replace(""", key: "AAECAwQFBgcICQoLDA0ODw==" }""", " }"), 5, "networks[0].key" },
        { "key not base64", Encrypted.Replace("AAECAwQFBgcICQoLDA0ODw==", "not-base64!"), 5, "networks[0].key" },
        { "key of 12 bytes", Encrypted.Replace("AAECAwQFBgcICQoLDA0ODw==", "AAECAwQFBgcICQoL"), 5, "networks[0].key" },
        { "key on a plain network", Encrypted.Replace("198.18.0.0/24 }", "198.18.0.0/24, key: AAECAwQFBgcICQoLDA0ODw== }"), 6, "networks[1].key" },
        { "MTU that does not fit", Encrypted.Replace("encrypted: true,", "encrypted: true, mtu: 1450,"), 5, "networks[0].mtu" },
        { "unknown wire form", Encrypted.Replace("esp: udp", "esp: tunnel"), 3, "encryption.esp" },
        { "missing key file", Encrypted.Replace("""key: "AAECAwQFBgcICQoLDA0ODw==" """, "key_file: /nonexistent/uo.key "), 5, "networks[0].key_file" },
    };

    [Theory]
    [MemberData(nameof(BadEncryption))]
    public void Encryption_errors_name_the_field(string what, string yaml, int line, string path)
        => ConfigAssert.ErrorAt(Errors(yaml), what, line, path);

    [Fact]
    public void A_missing_namespace_is_a_config_error()
    {
        var errors = Assert.Throws<ConfigException>(() => ConfigLoader.Parse("""
            underlay: { address: 192.0.2.1 }
            networks: [ { name: n, vni: 1, subnet: 198.18.0.0/24 } ]
            endpoints: [ { network: n, netns: uo-no-such-namespace-7f3a, address: 198.18.0.2/24 } ]
            """, "x.yaml", checkNamespaces: true)).Errors;
        var e = Assert.Single(errors);
        Assert.Equal("endpoints[0].netns", e.Path);
        Assert.Contains("does not exist", e.Message);
        Assert.Contains("ip netns add", e.Message);
    }

    [Fact]
    public void Missing_file_and_empty_file()
    {
        var missing = Assert.Throws<ConfigException>(() => ConfigLoader.Load("/nonexistent/uo.yaml")).Errors;
        Assert.Contains("no such file", missing[0].Message);
        var empty = Errors("");
        Assert.Contains("empty", empty[0].Message);
    }
}
