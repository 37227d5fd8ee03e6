using System.Text.Json;
using UserOverlay.Testing.Common;

namespace UserOverlay.Integration.Tests;

/// <summary>
/// The CNI plugin against the specification's rules, run as a runtime runs it (the real binary under the name
/// useroverlay-cni, a clean environment, the configuration on stdin) against a real router in a namespace: ADD's result
/// in each version matches the TAP the daemon made (and it carries frames), CHECK, DEL and ADD are idempotent, a
/// vanished namespace, GC, STATUS, a delegated IPAM plugin (host-local), a failed ADD that leaves nothing, a router
/// that is down (11) and one that restarts (the container's endpoint comes back).
/// </summary>
public sealed class CniPluginTests
{
    private static string Mac(string ns, string ifname) =>
        Shell.Run("ip", ["-n", ns, "-o", "link", "show", ifname]).EnsureSuccess().StdOut.Split("link/ether ")[1].Split(' ')[0];

    private static string Address(string ns, string ifname) =>
        Shell.Run("ip", ["-n", ns, "-o", "-4", "addr", "show", ifname]).EnsureSuccess().StdOut.Split("inet ")[1].Split(' ')[0];

    private static bool HasInterface(string ns, string ifname) => Shell.Run("ip", ["-n", ns, "link", "show", ifname]).ExitCode == 0;

    private static string WithPrev(string conf, JsonElement result) => conf[..^1] + ",\"prevResult\":" + result.GetRawText() + "}";

    [Fact]
    public async Task Add_check_and_del_in_each_version_attach_a_working_tap_and_are_idempotent()
    {
        Requires.Root();
        Requires.Tool("ping", "iputils-ping");
        using var net = new TestNetwork("ca");
        using var h = new CniHost(net, 1, "192.0.2.101");
        await h.Router.StartAsync();
        h.CreateNetwork("blue", "198.18.20.0/24", 6020);
        foreach (string version in new[] { "0.4.0", "1.0.0", "1.1.0" })
        {
            string ns = net.AddNamespace("v" + version.Replace(".", "")), path = $"/run/netns/{ns}", id = "ctr" + version.Replace(".", "");
            var result = CniHost.Succeeds(h.Cni("ADD", h.Conf(version), id, path))!.Value;
            Assert.Equal(version, result.GetProperty("cniVersion").GetString());
            var iface = Assert.Single(result.GetProperty("interfaces").EnumerateArray());
            Assert.Equal("eth0", iface.GetProperty("name").GetString());
            Assert.Equal(path, iface.GetProperty("sandbox").GetString());
            Assert.Equal(Mac(ns, "eth0"), iface.GetProperty("mac").GetString());
            Assert.Equal(version == "1.1.0", iface.TryGetProperty("mtu", out var mtu));
            if (version == "1.1.0") Assert.Equal(1450, mtu.GetInt32());
            var ip = Assert.Single(result.GetProperty("ips").EnumerateArray());
            Assert.Equal(Address(ns, "eth0"), ip.GetProperty("address").GetString());
            Assert.StartsWith("198.18.20.", ip.GetProperty("address").GetString());
            Assert.Equal("198.18.20.1", ip.GetProperty("gateway").GetString());
            Assert.Equal(0, ip.GetProperty("interface").GetInt32());
            Assert.Equal(version == "0.4.0", ip.TryGetProperty("version", out var v4) && v4.GetString() == "4");
            Assert.Equal("198.18.20.0/24", Assert.Single(result.GetProperty("routes").EnumerateArray()).GetProperty("dst").GetString());
            Assert.Equal(["198.18.20.1"], result.GetProperty("dns").GetProperty("nameservers").EnumerateArray().Select(n => n.GetString()));
            Assert.True(TestNetwork.Ping(ns, "198.18.20.1", count: 1), "the container's TAP reaches the network's gateway (the router)");
            Assert.Contains(await h.EndpointsAsync(), e => e.Name == "cni-" + id && e.Netns == path);

            Assert.Null(CniHost.Succeeds(h.Cni("CHECK", WithPrev(h.Conf(version), result), id, path)));
            var again = CniHost.Succeeds(h.Cni("ADD", h.Conf(version), id, path))!.Value; // a runtime's retry
            Assert.Equal(ip.GetProperty("address").GetString(), again.GetProperty("ips")[0].GetProperty("address").GetString());

            Assert.Null(CniHost.Succeeds(h.Cni("DEL", WithPrev(h.Conf(version), result), id, path)));
            Assert.False(HasInterface(ns, "eth0"), "DEL removed the TAP");
            Assert.DoesNotContain(await h.EndpointsAsync(), e => e.Name == "cni-" + id);
            Assert.Null(CniHost.Succeeds(h.Cni("DEL", h.Conf(version), id, path)));
            Assert.Null(CniHost.Succeeds(h.Cni("DEL", h.Conf(version), id, netns: "")));
            CniHost.Fails(h.Cni("CHECK", WithPrev(h.Conf(version), result), id, path), 101, "has no endpoint");
        }
    }

    [Fact]
    public async Task A_vanished_namespace_fails_check_and_del_still_cleans_up()
    {
        Requires.Root();
        using var net = new TestNetwork("cv");
        using var h = new CniHost(net, 1, "192.0.2.101");
        await h.Router.StartAsync();
        h.CreateNetwork("blue", "198.18.21.0/24", 6021);
        string ns = net.AddNamespace("c1"), path = $"/run/netns/{ns}";
        var result = CniHost.Succeeds(h.Cni("ADD", h.Conf(), "gone1", path, ifname: "net1"))!.Value;
        Assert.Contains(await h.EndpointsAsync(), e => e.Name == "cni-gone1-net1" && e.Interface == "net1");

        Shell.Run("ip", ["netns", "del", ns]).EnsureSuccess();
        CniHost.Fails(h.Cni("CHECK", WithPrev(h.Conf(), result), "gone1", path, ifname: "net1"), 101, "is gone");
        Assert.Null(CniHost.Succeeds(h.Cni("DEL", h.Conf(), "gone1", path, ifname: "net1")));
        Assert.Empty(await h.EndpointsAsync());
        Assert.Null(CniHost.Succeeds(h.Cni("DEL", h.Conf(), "gone1", netns: "", ifname: "net1")));
    }

    [Fact]
    public async Task Check_names_what_differs_from_the_add()
    {
        Requires.Root();
        using var net = new TestNetwork("cc");
        using var h = new CniHost(net, 1, "192.0.2.101");
        await h.Router.StartAsync();
        h.CreateNetwork("blue", "198.18.22.0/24", 6022);
        string ns = net.AddNamespace("c1"), path = $"/run/netns/{ns}", other = $"/run/netns/{net.AddNamespace("c2")}";
        var result = CniHost.Succeeds(h.Cni("ADD", h.Conf(), "chk1", path))!.Value;
        string raw = result.GetRawText(), mac = result.GetProperty("interfaces")[0].GetProperty("mac").GetString()!;
        using var wrongMac = JsonDocument.Parse(raw.Replace(mac, "02:00:00:00:00:01"));
        CniHost.Fails(h.Cni("CHECK", WithPrev(h.Conf(), wrongMac.RootElement), "chk1", path), 101, "02:00:00:00:00:01");
        CniHost.Fails(h.Cni("CHECK", WithPrev(h.Conf(), result), "chk1", other), 101, "not in CNI_NETNS");
        CniHost.Fails(h.Cni("CHECK", h.Conf(), "chk1", path), 7, "prevResult");
        Shell.Run("ip", ["-n", ns, "link", "set", "eth0", "address", "02:00:00:00:00:02"]).EnsureSuccess();
        CniHost.Fails(h.Cni("CHECK", WithPrev(h.Conf(), result), "chk1", path), 101, "has MAC 02:00:00:00:00:02");
        Assert.Null(CniHost.Succeeds(h.Cni("DEL", h.Conf(), "chk1", path)));
    }

    [Fact]
    public async Task Gc_removes_the_plugins_stale_endpoints_only()
    {
        Requires.Root();
        using var net = new TestNetwork("cg");
        using var h = new CniHost(net, 1, "192.0.2.101");
        await h.Router.StartAsync();
        h.CreateNetwork("blue", "198.18.23.0/24", 6023);
        string keep = net.AddNamespace("keep"), stale = net.AddNamespace("stale"), plain = net.AddNamespace("plain");
        CniHost.Succeeds(h.Cni("ADD", h.Conf(), "keep1", $"/run/netns/{keep}"));
        CniHost.Succeeds(h.Cni("ADD", h.Conf(), "stale1", $"/run/netns/{stale}"));
        h.Router.Cli("network", "connect", "-H", h.Router.Name, "blue", plain).EnsureSuccess(); // not the plugin's
        Assert.Equal(3, (await h.EndpointsAsync()).Count);

        CniHost.Fails(h.Cni("GC", h.Conf()), 7, "cni.dev/valid-attachments");
        Assert.Equal(3, (await h.EndpointsAsync()).Count);
        Assert.Null(CniHost.Succeeds(h.Cni("GC", h.Conf(extra: """ "cni.dev/valid-attachments":[{"containerID":"keep1","ifname":"eth0"}] """))));
        Assert.Equal(["cni-keep1", plain], (await h.EndpointsAsync()).Select(e => e.Name).Order(StringComparer.Ordinal));
        Assert.False(HasInterface(stale, "eth0"), "GC removed the stale container's TAP");
        Assert.True(HasInterface(keep, "eth0"));
    }

    [Fact]
    public async Task Status_delegated_ipam_and_a_failed_add_that_leaves_nothing()
    {
        Requires.Root();
        Requires.Installed("/usr/lib/cni/host-local", "containernetworking-plugins");
        using var net = new TestNetwork("ci");
        using var h = new CniHost(net, 1, "192.0.2.101");
        await h.Router.StartAsync();
        h.CreateNetwork("blue", "198.18.24.0/24", 6024);
        Assert.Null(CniHost.Succeeds(h.Cni("STATUS", h.Conf())));
        CniHost.Fails(h.Cni("STATUS", h.Conf(network: "nosuch")), 50, "nosuch");

        string data = Directory.CreateTempSubdirectory("uo-cni-hl-").FullName;
        try
        {
            string Ipam(string subnet, string start, string end) =>
                $$""" "ipam":{"type":"host-local","dataDir":"{{data}}","ranges":[[{"subnet":"{{subnet}}","rangeStart":"{{start}}","rangeEnd":"{{end}}"}]]} """;
            string ns = net.AddNamespace("c1"), path = $"/run/netns/{ns}";
            // Debian's host-local (containernetworking-plugins 1.1.1) speaks CNI up to 1.0.0.
            string conf = h.Conf("1.0.0", extra: Ipam("198.18.24.0/24", "198.18.24.200", "198.18.24.210"));
            var result = CniHost.Succeeds(h.Cni("ADD", conf, "hl1", path))!.Value;
            Assert.Equal("198.18.24.200/24", result.GetProperty("ips")[0].GetProperty("address").GetString());
            Assert.Equal("198.18.24.200/24", Address(ns, "eth0"));
            Assert.True(File.Exists(Path.Combine(data, "uo", "198.18.24.200")), "host-local holds the address");
            Assert.Null(CniHost.Succeeds(h.Cni("CHECK", WithPrev(conf, result), "hl1", path)));
            Assert.Null(CniHost.Succeeds(h.Cni("DEL", conf, "hl1", path)));
            Assert.False(File.Exists(Path.Combine(data, "uo", "198.18.24.200")), "DEL released the address in host-local");

            // An address outside the network: the router refuses it, and the delegated address is released again.
            string outside = h.Conf("1.0.0", extra: Ipam("198.18.25.0/24", "198.18.25.10", "198.18.25.20"));
            CniHost.Fails(h.Cni("ADD", outside, "hl2", path), 7, "198.18.25.10");
            Assert.False(File.Exists(Path.Combine(data, "uo", "198.18.25.10")), "the failed ADD released host-local's address");
            Assert.Empty(await h.EndpointsAsync());
            Assert.False(HasInterface(ns, "eth0"));
        }
        finally
        {
            Directory.Delete(data, recursive: true);
        }

        // A namespace that does not exist: code 3, nothing made.
        CniHost.Fails(h.Cni("ADD", h.Conf(), "nons", $"/run/netns/{net.Prefix}absent"), 3, "absent");
        Assert.Empty(await h.EndpointsAsync());
    }

    [Fact]
    public async Task A_router_that_is_down_is_code_11_and_a_restarted_one_restores_the_containers_endpoint()
    {
        Requires.Root();
        Requires.Tool("ping", "iputils-ping");
        using var net = new TestNetwork("cr");
        using var h = new CniHost(net, 1, "192.0.2.101");
        await h.Router.StartAsync();
        h.CreateNetwork("blue", "198.18.26.0/24", 6026);
        string ns = net.AddNamespace("c1"), path = $"/run/netns/{ns}";
        var result = CniHost.Succeeds(h.Cni("ADD", h.Conf(), "rs1", path))!.Value;

        Assert.Equal(0, await h.Router.StopAsync());
        CniHost.Fails(h.Cni("ADD", h.Conf(), "rs2", $"/run/netns/{net.AddNamespace("c2")}"), 11, "not running");
        CniHost.Fails(h.Cni("DEL", h.Conf(), "rs1", path), 11, "not running");
        CniHost.Fails(h.Cni("STATUS", h.Conf()), 50, "cannot attach");

        await h.Router.StartAsync();
        await Eventually.True(() => HasInterface(ns, "eth0"), TimeSpan.FromSeconds(10), "the restarted router restores the container's TAP");
        Assert.Null(CniHost.Succeeds(h.Cni("CHECK", WithPrev(h.Conf(), result), "rs1", path)));
        Assert.True(TestNetwork.Ping(ns, "198.18.26.1", count: 1), "the restored TAP carries frames");
        Assert.Null(CniHost.Succeeds(h.Cni("DEL", h.Conf(), "rs1", path)));
    }
}
