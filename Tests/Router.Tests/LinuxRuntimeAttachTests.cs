using UserOverlay.Testing.Common;

namespace UserOverlay.Router.Tests;

/// <summary>Run-time attach and detach against the kernel: real namespaces, TAP devices, routes and pings across two routers.</summary>
[Collection(LinuxDeviceCollection.Name)]
public class LinuxRuntimeAttachTests
{
    [Fact]
    public void An_endpoint_attached_at_run_time_pings_across_hosts_and_its_gateway_and_detaching_removes_its_TAP()
    {
        Requires.Root();
        using var net = new TestNetwork("rta");
        string[] hosts = [net.AddHost("h1", "192.0.2.1/24"), net.AddHost("h2", "192.0.2.2/24")];
        string c1 = net.AddNamespace("c1"), c2 = net.AddNamespace("c2");
        var blue = InMemoryHosts.Blue with { Gateway = InMemoryHosts.Ip("198.18.0.1") };
        RouterOptions Options(int i, EndpointOptions[] endpoints) => new()
        {
            Underlay = InMemoryHosts.Vtep(i),
            Peers = [InMemoryHosts.Vtep(3 - i)],
            Networks = [blue],
            Endpoints = endpoints,
            Queues = 2, // the quiesce handshake waits for both workers
        };
        using var r1 = Netns.Namespaces.RunIn(hosts[0], () => OverlayRouter.Start(Options(1, [InMemoryHosts.Endpoint("blue", c1, "198.18.0.11")])));
        using var r2 = Netns.Namespaces.RunIn(hosts[1], () => OverlayRouter.Start(Options(2, [])));

        // Attached from this thread (the test's own namespace), into c2, while r2 runs.
        var info = r2.AttachEndpoint(InMemoryHosts.Endpoint("blue", c2, "198.18.0.12"));
        Assert.Equal(InMemoryHosts.Ip("198.18.0.12"), info.Address);
        var link = TestNetwork.Exec(c2, "ip -o link show eth0").EnsureSuccess().StdOut;
        Assert.Contains("mtu 1450", link);
        Assert.Contains(info.Mac.ToString(), link);
        Assert.Contains("198.18.0.12/24", TestNetwork.Exec(c2, "ip -o addr show eth0").StdOut);
        Assert.Contains("via 198.18.0.1 dev eth0", TestNetwork.Exec(c2, "ip route show default").StdOut); // not internal: routed through the gateway

        Assert.True(TestNetwork.Ping(c2, "198.18.0.11", count: 3, minReplies: 2), "run-time endpoint → start-time endpoint across hosts");
        Assert.True(TestNetwork.Ping(c1, "198.18.0.12", count: 3, minReplies: 2), "start-time endpoint → run-time endpoint");
        Assert.True(TestNetwork.Ping(c2, "198.18.0.1", count: 3, minReplies: 2), "the gateway, answered by host 2's router");
        Assert.True(TestNetwork.Ping(c1, "198.18.0.1", count: 3, minReplies: 2), "the gateway, answered by host 1's router");
        Assert.Contains("02:75:6f:00:10:01", TestNetwork.Exec(c2, "ip neigh show 198.18.0.1").StdOut);
        Assert.True(r2.GetStatus().Networks.Single().Counters.GatewayReplies >= 2);

        Assert.True(r2.DetachEndpoint("blue", c2, "eth0"));
        Assert.NotEqual(0, TestNetwork.Exec(c2, "ip link show eth0").ExitCode); // the TAP is gone from the namespace
        Assert.Empty(r2.Endpoints);
        Assert.Empty(r2.GetStatus().Networks.Single().Endpoints);
        Assert.False(TestNetwork.Ping(c1, "198.18.0.12", count: 2, waitSeconds: 1, minReplies: 1));

        // Attaching again works (a new device), then the namespace is deleted under the router: detaching still succeeds.
        r2.AttachEndpoint(InMemoryHosts.Endpoint("blue", c2, "198.18.0.12"));
        Assert.True(TestNetwork.Ping(c2, "198.18.0.11", count: 3, minReplies: 2));
        Shell.Must($"ip netns del {c2}");
        Assert.True(r2.DetachEndpoint("blue", c2, "eth0"));
        Assert.Empty(r2.Endpoints);
    }

    [Fact]
    public void An_attach_into_a_missing_namespace_or_onto_a_taken_interface_fails_cleanly()
    {
        Requires.Root();
        using var net = new TestNetwork("rtb");
        string host = net.AddHost("h1", "192.0.2.1/24");
        string c1 = net.AddNamespace("c1");
        using var r = Netns.Namespaces.RunIn(host, () => OverlayRouter.Start(new RouterOptions
        {
            Underlay = InMemoryHosts.Vtep(1),
            Peers = [InMemoryHosts.Vtep(2)],
            Networks = [InMemoryHosts.Blue],
        }));

        var missing = Assert.Throws<RouterException>(() => r.AttachEndpoint(InMemoryHosts.Endpoint("blue", net.Prefix + "nosuch", "198.18.0.11")));
        Assert.Equal(RouterErrorCode.NamespaceNotFound, missing.Code);
        Assert.Contains("does not exist", missing.Message);

        Shell.Must($"ip -n {c1} link add eth0 type veth peer name eth0p"); // something else has the name in that namespace
        var taken = Assert.Throws<RouterException>(() => r.AttachEndpoint(InMemoryHosts.Endpoint("blue", c1, "198.18.0.11")));
        Assert.Equal(RouterErrorCode.InterfaceExists, taken.Code);
        Assert.Contains("veth", TestNetwork.Exec(c1, "ip -d -o link show eth0").EnsureSuccess().StdOut); // untouched
        Assert.DoesNotContain("198.18.0.11", TestNetwork.Exec(c1, "ip -o addr").StdOut);

        var s = r.GetStatus().Networks.Single();
        Assert.Empty(s.Endpoints);
        Assert.Empty(s.Fdb);
        Assert.Empty(r.Endpoints);

        // And with the name free, the same endpoint attaches.
        r.AttachEndpoint(InMemoryHosts.Endpoint("blue", c1, "198.18.0.11") with { Interface = "eth1" });
        Assert.Contains("198.18.0.11/24", TestNetwork.Exec(c1, "ip -o addr show eth1").EnsureSuccess().StdOut);
        Assert.True(r.DetachEndpoint("blue", c1, "eth1"));
        Assert.NotEqual(0, TestNetwork.Exec(c1, "ip link show eth1").ExitCode);
    }
}
