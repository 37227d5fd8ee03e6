using System.Net;
using UserOverlay.Router.Testing;
using static UserOverlay.Router.Tests.InMemoryHosts;

namespace UserOverlay.Router.Tests;

/// <summary>Attaching and detaching hundreds of endpoints while a flow runs on others: no frame of the flow is lost.</summary>
public class AttachChurnTests : InMemoryHostsTest
{
    private static MacAddress MacOf(string ip) => MacAddress.FromIPv4(IPAddress.Parse(ip));

    [Fact]
    public async Task A_flow_keeps_every_frame_while_hundreds_of_endpoints_attach_and_detach_on_both_hosts()
    {
        const int Frames = 20_000; // at least; the flow runs until the churn is over
        const int Churn = 300;
        var big = Blue with { Subnet = new Ipv4Prefix(Ip("198.18.0.0"), 16) };
        EndpointOptions E(string ns, string ip) => new() { Network = "blue", Netns = ns, Address = Ip(ip), PrefixLength = 16 };
        var (ra, a) = Hosts.Add(1, [2], [big], [E("c1", "198.18.0.11"), E("l1", "198.18.0.13")], o => o with { Learning = false });
        var (rb, b) = Hosts.Add(2, [1], [big], [E("c2", "198.18.0.12")], o => o with { Learning = false });
        ra.SetRemoteEndpoint("blue", MacOf("198.18.0.12"), Ip("198.18.0.12"), Vtep(2));
        rb.SetRemoteEndpoint("blue", MacOf("198.18.0.11"), Ip("198.18.0.11"), Vtep(1));

        var remoteFrame = Packets.Udp4(MacOf("198.18.0.11"), MacOf("198.18.0.12"), "198.18.0.11", "198.18.0.12", 100);
        var localFrame = Packets.Udp4(MacOf("198.18.0.11"), MacOf("198.18.0.13"), "198.18.0.11", "198.18.0.13", 100);
        // Broadcasts reach every port of both hosts, the churning ones too: a port written after its TAP was closed
        // would be an internal error (ChannelTap throws once disposed), so these test the quiesce handshake.
        var broadcast = Packets.Udp4(MacOf("198.18.0.11"), MacAddress.Broadcast, "198.18.0.11", "198.18.255.255", 60);

        int attached = 0;
        Task ChurnOn(OverlayRouter r, int host) => Task.Run(() =>
        {
            for (int i = 0; i < Churn; i++)
            {
                string ip = $"198.18.{1 + host}.{1 + i % 250}";
                string ns = $"x{host}-{i}";
                r.AttachEndpoint(E(ns, ip));
                Interlocked.Increment(ref attached);
                if (i % 3 != 2) Assert.True(r.DetachEndpoint("blue", ns, "eth0")); // a third stay attached for a while
                if (i % 3 == 2 && i >= 30) Assert.True(r.DetachEndpoint("blue", $"x{host}-{i - 30}", "eth0"));
            }
        });

        // The flow: c1 → c2 across the underlay, and c1 → l1 on host 1. It starts first, the churn joins after a while,
        // and the flow goes on until the churn is over, so the two overlap by construction.
        var tapC1 = a.Tap("c1");
        Task? churn = null;
        int sent = 0, broadcasts = 0;
        while (churn is null || !churn.IsCompleted || sent < Frames)
        {
            tapC1.Inject(remoteFrame);
            tapC1.Inject(localFrame);
            sent++;
            if (sent % 10 == 0) { tapC1.Inject(broadcast); broadcasts++; }
            if (sent == 1000) churn = Task.WhenAll(ChurnOn(ra, 1), ChurnOn(rb, 2));
            if (sent % 100 == 0) await Task.Delay(1, TestContext.Current.CancellationToken);
        }
        await churn;
        Assert.Equal(2 * Churn, attached);

        var c2 = b.Tap("c2");
        var l1 = a.Tap("l1");
        int want = sent + broadcasts;
        SpinWait.SpinUntil(() => c2.WrittenCount >= want && l1.WrittenCount >= want, TimeSpan.FromSeconds(30));
        Thread.Sleep(100); // nothing more arrives (no frame twice either)
        Assert.Equal(want, c2.WrittenCount);
        Assert.Equal(want, l1.WrittenCount);
        foreach (var r in new[] { ra, rb })
        {
            var s = r.GetStatus();
            Assert.Equal(0, s.Net("blue").Counters.Drops.Values.Sum());
            Assert.Equal(0, s.Drops.Values.Sum()); // no internal error: no worker wrote to a closed TAP
        }
        // What stayed attached is exactly what the churn left: the last 10 of each host's kept thirds, plus the start-time ones.
        Assert.Equal(2 + 10, ra.Endpoints.Count);
        Assert.Equal(1 + 10, rb.Endpoints.Count);
        Assert.Equal(12, a.LiveTaps);
        Assert.Equal(11, b.LiveTaps);
    }

    [Fact]
    public async Task Detaching_waits_for_a_worker_still_in_a_round_that_holds_the_port_before_closing_its_TAP()
    {
        var (r, a) = Hosts.Add(1, [], [Blue], [Endpoint("blue", "c1", "198.18.0.11"), Endpoint("blue", "c3", "198.18.0.13")]);
        r.AttachEndpoint(Endpoint("blue", "c2", "198.18.0.12"));
        var c2 = a.Tap("c2");
        using var gate = new ManualResetEventSlim(false);
        a.Tap("c3").WriteGate = gate;

        try
        {
            // A broadcast from c1: the worker floods it to c3 (and blocks there, mid-round); c2 comes after c3 in the flood.
            a.Tap("c1").Inject(Packets.Udp4(MacOf("198.18.0.11"), MacAddress.Broadcast, "198.18.0.11", "198.18.0.255"));
            await Eventually(() => r.GetStatus().Net("blue").Counters.TxFrames == 1);
            var detach = Task.Run(() => r.DetachEndpoint("blue", "c2", "eth0"), TestContext.Current.CancellationToken);
            await Task.Delay(300, TestContext.Current.CancellationToken);
            Assert.False(detach.IsCompleted); // the worker's round still holds the port: no return, and its TAP stays open
            Assert.False(c2.IsDisposed);
            Assert.DoesNotContain(r.GetStatus().Net("blue").Endpoints, e => e.Netns == "c2"); // already out of the tables

            gate.Set();
            Assert.True(await detach);
            Assert.True(c2.IsDisposed);
            var s = r.GetStatus();
            Assert.Equal(1, s.Net("blue").Counters.DeliveredFrames); // c3; c2's slot was empty by the time the worker came to it
            Assert.Equal(0, s.Drops["internal_error"]);
        }
        finally
        {
            gate.Set(); // never leave the worker blocked (the router's disposal joins it)
        }
    }

    private static async Task Eventually(Func<bool> condition)
    {
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(5);
        while (!condition())
        {
            Assert.True(DateTime.UtcNow < deadline, "timed out");
            await Task.Delay(10, TestContext.Current.CancellationToken);
        }
    }
}
