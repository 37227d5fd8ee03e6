using UserOverlay.Testing.Common;

namespace UserOverlay.Integration.Tests;

/// <summary>
/// Three hosts on an underlay bridge (192.0.2.1–3), each running `useroverlay up`, plus a Linux
/// kernel VXLAN peer (192.0.2.9) and a stranger on the underlay (192.0.2.66). Networks:
/// blue (VNI 4097) and red (VNI 4098) share the overlay subnet 198.18.0.0/24; green (VNI 4099,
/// 198.18.1.0/24) is a second network of namespace b1 (a second TAP, eth1) and b3.
/// <code>
///   h1: b1 .11 (+ green .1.11 on eth1), b1x .14, r1 .21     h2: b2 .12, r2 .22
///   h3: b3 .13 (+ green .1.13 on eth1), r3 .23              kernel peer k: vx0 VNI 4097, 198.18.0.99
/// </code>
/// </summary>
public sealed class OverlayFixture : IAsyncLifetime
{
    public TestNetwork Net { get; private set; } = null!;
    public RouterProcess[] Routers { get; private set; } = [];
    public Dictionary<string, string> Ns { get; } = new();
    public string Kernel => Ns["k"];
    public string Stranger => Ns["x"];

    public static readonly (string Ns, string Host, string Network, string Address, string Iface)[] Endpoints =
    [
        ("b1", "h1", "blue", "198.18.0.11", "eth0"), ("b1x", "h1", "blue", "198.18.0.14", "eth0"), ("r1", "h1", "red", "198.18.0.21", "eth0"),
        ("b2", "h2", "blue", "198.18.0.12", "eth0"), ("r2", "h2", "red", "198.18.0.22", "eth0"),
        ("b3", "h3", "blue", "198.18.0.13", "eth0"), ("r3", "h3", "red", "198.18.0.23", "eth0"),
        ("b1", "h1", "green", "198.18.1.11", "eth1"), ("b3", "h3", "green", "198.18.1.13", "eth1"),
    ];

    public async ValueTask InitializeAsync()
    {
        Requires.Root();
        Requires.Tool("ip", "iproute2");
        Requires.Tool("ping", "iputils-ping");
        Requires.Tool("ethtool", "ethtool");
        Net = new TestNetwork("it");
        for (int i = 1; i <= 3; i++) Ns[$"h{i}"] = Net.AddHost($"h{i}", $"192.0.2.{i}/24");
        foreach (var e in Endpoints.Select(e => e.Ns).Distinct()) Ns[e] = Net.AddNamespace(e);
        Ns["x"] = Net.AddHost("x", "192.0.2.66/24");

        // The kernel's own VXLAN device as a peer on blue: no learning, flood entries to every router.
        Ns["k"] = Net.AddHost("k", "192.0.2.9/24");
        Shell.Must($"ip -n {Kernel} link add vx0 type vxlan id 4097 dstport 4789 local 192.0.2.9 dev eth0 nolearning");
        Shell.Must($"ip -n {Kernel} link set vx0 address 02:42:c6:12:00:63 mtu 1450");
        Shell.Must($"ip -n {Kernel} addr add 198.18.0.99/24 dev vx0");
        Shell.Must($"ip -n {Kernel} link set vx0 up");
        // Over veth, checksum offload would leave the inner TCP checksum partial on the wire (a NIC
        // completes it; veth never does) and the receiving endpoint would drop every segment:
        // make the kernel compute inner checksums, as it does for a NIC without tunnel offloads.
        TestNetwork.Exec(Kernel, "ethtool -K vx0 tx off").EnsureSuccess();
        for (int i = 1; i <= 3; i++)
            TestNetwork.Exec(Kernel, $"bridge fdb append 00:00:00:00:00:00 dev vx0 dst 192.0.2.{i}").EnsureSuccess();

        Routers = Enumerable.Range(1, 3).Select(i => new RouterProcess(Net, Ns[$"h{i}"], $"{Net.Prefix}h{i}", Config(i))).ToArray();
        await Task.WhenAll(Routers.Select(r => r.StartAsync()));
    }

    public string Config(int host)
    {
        var peers = new[] { 1, 2, 3 }.Where(p => p != host).Select(p => $"192.0.2.{p}").Append("192.0.2.9");
        var eps = Endpoints.Where(e => e.Host == $"h{host}")
            .Select(e => $"  - {{ network: {e.Network}, netns: {Ns[e.Ns]}, interface: {e.Iface}, address: {e.Address}/24 }}");
        return $$"""
            underlay: { address: 192.0.2.{{host}} }
            peers: [{{string.Join(", ", peers)}}]
            networks:
              - { name: blue, vni: 4097, subnet: 198.18.0.0/24 }
              - { name: red, vni: 4098, subnet: 198.18.0.0/24 }
              - { name: green, vni: 4099, subnet: 198.18.1.0/24 }
            endpoints:
            {{string.Join("\n", eps)}}
            """;
    }

    public async ValueTask DisposeAsync()
    {
        foreach (var r in Routers) r.Dispose();
        Net?.Dispose();
        await Task.CompletedTask;
    }
}
