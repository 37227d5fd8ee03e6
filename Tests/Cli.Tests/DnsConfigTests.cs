using UserOverlay.Cli.Config;

namespace UserOverlay.Cli.Tests;

/// <summary>The <c>dns:</c> section: upstreams (port 53 by default), enabled, errors naming the field; resolv.conf's nameservers.</summary>
public class DnsConfigTests
{
    private const string Base = """
        underlay: { address: 192.0.2.1 }
        networks: [ { name: blue, vni: 4097, subnet: 198.18.0.0/24 } ]
        """;

    private static HostConfig Parse(string yaml) => ConfigLoader.Parse(yaml, "host.yaml", checkNamespaces: false);

    [Fact]
    public void Without_a_section_the_responder_runs_and_reads_resolv_conf()
    {
        var c = Parse(Base);
        Assert.True(c.Dns.Enabled);
        Assert.Null(c.Dns.Upstream);
    }

    [Fact]
    public void Upstreams_are_addresses_with_port_53_unless_given()
    {
        var c = Parse(Base + "\ndns: { upstream: [192.0.2.53, \"192.0.2.54:5353\"] }\n");
        Assert.Equal(["192.0.2.53:53", "192.0.2.54:5353"], c.Dns.Upstream!.Select(e => e.ToString()));
        Assert.Empty(Parse(Base + "\ndns: { upstream: [] }\n").Dns.Upstream!);
        Assert.False(Parse(Base + "\ndns: { enabled: false }\n").Dns.Enabled);
    }

    [Fact]
    public void A_bad_upstream_or_key_names_its_field()
    {
        var e = Assert.Throws<ConfigException>(() => Parse(Base + "\ndns: { upstream: [resolver.example] }\n"));
        Assert.Contains(e.Errors, x => x.Path == "dns.upstream[0]" && x.Message.Contains("not an IPv4 address"));
        e = Assert.Throws<ConfigException>(() => Parse(Base + "\ndns: { upstreams: [192.0.2.53] }\n"));
        Assert.Contains(e.Errors, x => x.Path.Contains("upstreams"));
    }

    [Fact]
    public void Resolv_conf_gives_its_ipv4_nameservers()
    {
        var list = DnsConfig.ParseResolvConf("# comment\nsearch example.test\nnameserver 192.0.2.53\nnameserver ::1\nnameserver\t198.18.0.53\noptions ndots:1\n");
        Assert.Equal(["192.0.2.53:53", "198.18.0.53:53"], list.Select(e => e.ToString()));
    }
}
