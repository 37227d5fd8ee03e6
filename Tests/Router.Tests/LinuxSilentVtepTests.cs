using System.Text.RegularExpressions;
using UserOverlay.Testing.Common;

namespace UserOverlay.Router.Tests;

/// <summary>
/// Static mode against the kernel: three hosts' routers in namespaces, an endpoint that moves from a host whose router
/// stopped to another host. The learned entry behind the silent host goes after the default 5 s window, and a ping that
/// never stops resumes through the new host.
/// </summary>
[Collection(LinuxDeviceCollection.Name)]
public partial class LinuxSilentVtepTests
{
    [Fact]
    public void A_ping_to_an_endpoint_that_moved_off_a_stopped_host_resumes_through_its_new_host()
    {
        Requires.Root();
        using var net = new TestNetwork("sil");
        string[] hosts = [net.AddHost("h1", "192.0.2.1/24"), net.AddHost("h2", "192.0.2.2/24"), net.AddHost("h3", "192.0.2.3/24")];
        string c1 = net.AddNamespace("c1"), cm = net.AddNamespace("m");
        RouterOptions Options(int i, EndpointOptions[] endpoints) => new()
        {
            Underlay = InMemoryHosts.Vtep(i),
            Peers = [.. new[] { 1, 2, 3 }.Where(p => p != i).Select(InMemoryHosts.Vtep)],
            Networks = [InMemoryHosts.Blue],
            Endpoints = endpoints,
            Queues = 2,
        };
        var m = InMemoryHosts.Endpoint("blue", cm, "198.18.0.50");
        using var r1 = Netns.Namespaces.RunIn(hosts[0], () => OverlayRouter.Start(Options(1, [InMemoryHosts.Endpoint("blue", c1, "198.18.0.11")])));
        using var r3 = Netns.Namespaces.RunIn(hosts[2], () => OverlayRouter.Start(Options(3, [])));
        var r2 = Netns.Namespaces.RunIn(hosts[1], () => OverlayRouter.Start(Options(2, [m])));
        try
        {
            Assert.True(TestNetwork.Ping(c1, "198.18.0.50", count: 3, minReplies: 2), "c1 → m on host 2");
            string mac = m.EffectiveMac.ToString();
            Assert.Equal(InMemoryHosts.Vtep(2).ToString(), r1.GetStatus().Networks.Single().Fdb.Single(e => e.Mac == mac).Destination);
        }
        finally { r2.Dispose(); } // host 2's router stops: its TAP goes, nothing answers at 192.0.2.2:4789 any more

        // The endpoint comes up on host 3 (same namespace, MAC and address), and c1 pings it every 200 ms for 12 s.
        r3.AttachEndpoint(m);
        var ping = TestNetwork.Exec(c1, "ping -n -i 0.2 -w 12 198.18.0.50", TimeSpan.FromSeconds(30));
        var replies = Reply().Matches(ping.StdOut).Select(x => int.Parse(x.Groups[1].Value)).ToList();
        Assert.True(replies.Count > 0, $"no reply in 12 s:\n{ping.StdOut}{ping.StdErr}");
        double resumedAfter = (replies[0] - 1) * 0.2; // icmp_seq counts from 1, one every 200 ms
        TestContext.Current.TestOutputHelper?.WriteLine($"the ping resumed after {resumedAfter:0.0} s ({replies.Count} replies)");
        Assert.True(resumedAfter <= 8, $"the ping resumed only after {resumedAfter:0.0} s (5 s window + 1 s sweep expected)\n{ping.StdOut}");
        Assert.True(replies.Count >= 10, $"the ping did not keep going after it resumed:\n{ping.StdOut}");

        var s = r1.GetStatus();
        var blue = s.Networks.Single();
        Assert.Equal(1, blue.Counters.FdbUnansweredRemoved); // the silent host's entry went (not a gratuitous ARP of the moved endpoint)
        Assert.Equal(InMemoryHosts.Vtep(3).ToString(), blue.Fdb.Single(e => e.Mac == m.EffectiveMac.ToString()).Destination);
        Assert.True(s.PeerDetails!.Single(p => p.Vtep == InMemoryHosts.Vtep(2).ToString()).LastHeardSeconds >= 5);
    }

    [GeneratedRegex(@"bytes from 198\.18\.0\.50: icmp_seq=(\d+)")]
    private static partial Regex Reply();
}
