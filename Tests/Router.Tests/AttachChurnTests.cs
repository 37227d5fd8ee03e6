using System.Net;
using UserOverlay.Router.Testing;
using static UserOverlay.Router.Tests.InMemoryHosts;

namespace UserOverlay.Router.Tests;

/// <summary>Attaching and detaching hundreds of endpoints while a flow runs on others: no frame of the flow is lost.</summary>
public class AttachChurnTests : IDisposable
{
    private readonly InMemoryHosts _hosts = new();
    public void Dispose() => _hosts.Dispose();

    private static MacAddress MacOf(string ip) => MacAddress.FromIPv4(IPAddress.Parse(ip));

    [Fact]
    public async Task A_flow_keeps_every_frame_while_hundreds_of_endpoints_attach_and_detach_on_both_hosts()
    {
        const int Frames = 20_000;
        const int Churn = 300;
        var big = Blue with { Subnet = new Ipv4Prefix(Ip("198.18.0.0"), 16) };
        EndpointOptions E(string ns, string ip) => new() { Network = "blue", Netns = ns, Address = Ip(ip), PrefixLength = 16 };
        var (ra, a) = _hosts.Add(1, [2], [big], [E("c1", "198.18.0.11"), E("l1", "198.18.0.13")], o => o with { Learning = false });
        var (rb, b) = _hosts.Add(2, [1], [big], [E("c2", "198.18.0.12")], o => o with { Learning = false });
        ra.SetRemoteEndpoint("blue", MacOf("198.18.0.12"), Ip("198.18.0.12"), Vtep(2));
        rb.SetRemoteEndpoint("blue", MacOf("198.18.0.11"), Ip("198.18.0.11"), Vtep(1));

        var remoteFrame = Packets.Udp4(MacOf("198.18.0.11"), MacOf("198.18.0.12"), "198.18.0.11", "198.18.0.12", 100);
        var localFrame = Packets.Udp4(MacOf("198.18.0.11"), MacOf("198.18.0.13"), "198.18.0.11", "198.18.0.13", 100);

        int attached = 0;
        Task ChurnOn(OverlayRouter r, int host) => Task.Run(() =>
        {
            for (int i = 0; i < Churn; i++)
            {
                string ip = $"198.18.{1 + host}.{1 + i % 250}";
                string ns = $"x{host}-{i}";
                r.AttachEndpoint(E(ns, ip) with { Address = Ip(ip) });
                Interlocked.Increment(ref attached);
                if (i % 3 != 2) Assert.True(r.DetachEndpoint("blue", ns, "eth0")); // a third stay attached for a while
                if (i % 3 == 2 && i >= 30) Assert.True(r.DetachEndpoint("blue", $"x{host}-{i - 30}", "eth0"));
            }
        });
        var churn = Task.WhenAll(ChurnOn(ra, 1), ChurnOn(rb, 2));

        // The flow: c1 → c2 across the underlay, and c1 → l1 on host 1, paced so that it overlaps the churn.
        var tapC1 = a.Tap("c1");
        for (int i = 0; i < Frames; i++)
        {
            tapC1.Inject(remoteFrame);
            tapC1.Inject(localFrame);
            if (i % 200 == 0) await Task.Delay(1, TestContext.Current.CancellationToken);
        }
        await churn;
        Assert.Equal(2 * Churn, attached);

        var c2 = b.Tap("c2");
        var l1 = a.Tap("l1");
        SpinWait.SpinUntil(() => c2.WrittenCount >= Frames && l1.WrittenCount >= Frames, TimeSpan.FromSeconds(30));
        Assert.Equal(Frames, c2.WrittenCount);
        Assert.Equal(Frames, l1.WrittenCount);
        Assert.Equal(0, ra.GetStatus().Net("blue").Counters.Drops.Values.Sum());
        Assert.Equal(0, rb.GetStatus().Net("blue").Counters.Drops.Values.Sum());
        // What stayed attached is exactly what the churn left: the last 10 of each host's kept thirds, plus the start-time ones.
        Assert.Equal(2 + 10, ra.Endpoints.Count);
        Assert.Equal(1 + 10, rb.Endpoints.Count);
        Assert.Equal(12, a.LiveTaps);
        Assert.Equal(11, b.LiveTaps);
    }
}
