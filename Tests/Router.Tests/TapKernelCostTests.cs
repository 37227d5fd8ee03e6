using UserOverlay.Router.Linux;
using UserOverlay.Router.Tap;
using UserOverlay.Testing.Common;

namespace UserOverlay.Router.Tests;

/// <summary>
/// What a TAP costs the kernel: the router gives every TAP the root qdisc noqueue (the default, mq with a pfifo_fast on
/// each of a multi-queue TAP's 256 transmit queues, is 6.6 MB of kernel memory per TAP) and steers every multi-queue TAP
/// with one shared eBPF program — and traffic flows as before.
/// </summary>
[Collection(LinuxDeviceCollection.Name)]
public class TapKernelCostTests
{
    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    public void A_created_tap_has_the_root_qdisc_noqueue_and_no_other(int queues)
    {
        Requires.Root();
        Requires.Tool("tc", "iproute2");
        using var net = new TestNetwork("tq");
        string ns = net.AddNamespace("c1");
        using var tap = LinuxTap.Create(new TapRequest(ns, "eth0", MacAddress.Parse("02:00:c6:12:00:01"), 1400, InMemoryHosts.Ip("198.18.0.1"), 24,
            Queues: queues));
        Assert.Equal(queues, tap.QueueCount);
        string qdiscs = TestNetwork.Exec(ns, "tc qdisc show dev eth0").EnsureSuccess().StdOut;
        Assert.StartsWith("qdisc noqueue ", qdiscs.Trim());
        Assert.Single(qdiscs.Trim().Split('\n')); // no mq, no pfifo_fast child
        Assert.Contains("UP", TestNetwork.Exec(ns, "ip -o link show eth0").EnsureSuccess().StdOut); // brought up after: kept
    }

    [Fact]
    public void Endpoints_of_a_multi_queue_router_ping_each_other_through_their_noqueue_taps()
    {
        Requires.Root();
        Requires.Tool("tc", "iproute2");
        using var net = new TestNetwork("tqr");
        string host = net.AddHost("h1", "192.0.2.1/24");
        string c1 = net.AddNamespace("c1"), c2 = net.AddNamespace("c2");
        using var r = Netns.Namespaces.RunIn(host, () => OverlayRouter.Start(new RouterOptions
        {
            Underlay = InMemoryHosts.Vtep(1),
            Peers = [InMemoryHosts.Vtep(2)],
            Networks = [InMemoryHosts.Blue],
            Queues = 2,
            Endpoints = [InMemoryHosts.Endpoint("blue", c1, "198.18.0.11")],
        }));
        r.AttachEndpoint(InMemoryHosts.Endpoint("blue", c2, "198.18.0.12")); // at run time, the same path
        foreach (string ns in new[] { c1, c2 })
            Assert.StartsWith("qdisc noqueue ", TestNetwork.Exec(ns, "tc qdisc show dev eth0").EnsureSuccess().StdOut.Trim());

        Assert.True(TestNetwork.Ping(c1, "198.18.0.12", count: 5, minReplies: 5), "c1 → c2 through both TAPs");
        Assert.True(TestNetwork.Ping(c2, "198.18.0.11", count: 5, minReplies: 5), "c2 → c1");
        var s = r.GetStatus();
        var c = s.Net("blue").Counters;
        Assert.True(c.TxFrames >= 20 && c.DeliveredFrames >= 20, $"read {c.TxFrames}, delivered {c.DeliveredFrames}");
        Assert.Equal(0, s.Drop("blue", "endpoint_write_failed"));
        Assert.Equal(0, s.Drop("blue", "internal_error"));
    }

    [Fact]
    public void Every_multi_queue_tap_is_steered_by_one_shared_program()
    {
        Requires.Root();
        using var net = new TestNetwork("tqs");
        var taps = new List<ITapDevice>();
        try
        {
            for (int i = 0; i < 3; i++)
            {
                string ns = net.AddNamespace($"c{i}");
                taps.Add(LinuxTap.Create(new TapRequest(ns, "eth0", MacAddress.Parse($"02:00:c6:12:00:0{i + 1}"), 1400,
                    InMemoryHosts.Ip($"198.18.0.{i + 1}"), 24, Queues: 2)));
            }
            // The process loads the program once, whichever test made the first multi-queue TAP, and never again.
            Assert.Equal(1, TapSteering.Loads);
            foreach (var t in taps)
                Assert.True(TapSteering.AttachCpuProgram(((LinuxTap)t).WriteFd), "the shared program attaches to every TAP");
            Assert.Equal(1, TapSteering.Loads);
        }
        finally
        {
            foreach (var t in taps) t.Dispose();
        }
    }
}
