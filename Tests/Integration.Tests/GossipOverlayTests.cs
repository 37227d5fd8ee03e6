using System.Diagnostics;
using System.Net;
using System.Text.Json;
using UserOverlay.Testing.Common;

namespace UserOverlay.Integration.Tests;

/// <summary>
/// Gossip mode end to end: real routers in namespaces learn their FDB, proxy-ARP table, flood lists
/// and accepted peers from the replicated endpoint table — no static peer list anywhere. Every test
/// starts from (and returns to) the converged four-host cluster of <see cref="GossipFixture"/>.
/// Timeouts are upper bounds for convergence, not speed assertions; measured times are printed.
/// </summary>
[Collection(nameof(GossipCollection))]
public sealed class GossipOverlayTests(GossipFixture f, ITestOutputHelper output)
{
    /// <summary>Upper bound for convergence: gossip takes a second or two; a push/pull round (10 s here) repairs any hole.</summary>
    private static readonly TimeSpan Converge = TimeSpan.FromSeconds(30);
    /// <summary>
    /// Upper bound for failure detection with the fixture's settings: 500 ms probes, suspicion 1.5 s once confirmed by
    /// another member, or 500 ms after a TCP probe the host refuses (a killed router: nothing listens on its port).
    /// </summary>
    private static readonly TimeSpan Detect = TimeSpan.FromSeconds(20);
    /// <summary>
    /// Upper bound on an isolated host: nobody confirms its suspicions, so each runs to Lifeguard's
    /// maximum (SuspicionMaxTimeoutMult 3 · 1.5 s = 4.5 s), and its failing probes slow its probing (Lifeguard's awareness).
    /// </summary>
    private static readonly TimeSpan DetectAlone = TimeSpan.FromSeconds(45);

    private string Ns(string n) => f.Ns[n];

    private async Task StartFromConverged()
    {
        var sw = Stopwatch.StartNew();
        if (f.Router(5).IsRunning) await f.Router(5).StopAsync();
        await f.ConvergedAsync(Converge, "the four-host cluster converges");
        Figure("(converged cluster at the start of the test)", sw);
    }

    private void Figure(string what, Stopwatch sw) => output.WriteLine($"[figures] {what}: {sw.Elapsed.TotalSeconds:0.0} s");

    private static bool PingOnce(string ns, string address) => TestNetwork.Ping(ns, address, count: 1, waitSeconds: 1);

    /// <summary>Every endpoint pings every other endpoint of its network (among hosts in <paramref name="hosts"/>); returns the failures.</summary>
    private async Task<List<string>> PingFailures(IReadOnlyCollection<int> hosts)
    {
        var eps = GossipFixture.Endpoints.Where(e => hosts.Contains(e.Host)).ToList();
        var failures = new System.Collections.Concurrent.ConcurrentBag<string>();
        var pairs = from a in eps from b in eps where a.Network == b.Network && a.Ns != b.Ns select (a, b);
        await Parallel.ForEachAsync(pairs.GroupBy(p => p.a.Ns), async (g, _) =>
        {
            foreach (var (a, b) in g)
                if (!TestNetwork.Ping(Ns(a.Ns), b.Address, count: 3, interval: 0.2, minReplies: 2))
                    failures.Add($"{a.Ns}({a.Network}) → {b.Ns} {b.Address}");
            await Task.CompletedTask;
        });
        return [.. failures];
    }

    [Fact]
    public async Task Hosts_that_started_before_their_seed_join_it_and_every_endpoint_pings_every_other_in_its_network()
    {
        await StartFromConverged();
        // h2 came up before the seed: it said so, kept trying, and joined.
        Assert.Contains("No seed answered yet", f.Router(2).Output);
        var failures = await PingFailures([1, 2, 3, 4]);
        Assert.True(failures.Count == 0, "no replies: " + string.Join(", ", failures));

        // No static peers, no data-plane learning: everything remote comes from gossip.
        var s = await f.Router(1).StatusAsync();
        Assert.False(s.Learning);
        Assert.DoesNotContain(s.Networks.SelectMany(n => n.Fdb), e => e.Source is "learned" or "static");
        Assert.Equal(3, s.Networks.Single(n => n.Name == "blue").Fdb.Count); // b1 local, b2 and b3 by gossip
        var text = f.Router(1).Cli("status", "--name", f.Router(1).Name).EnsureSuccess().StdOut;
        Assert.Contains($"{GossipFixture.Mac("198.18.0.12"),-19} {"192.0.2.2:4789",-28} gossip", text); // the FDB line says where it came from
        Assert.Contains("198.18.2.24", text); // r4's address in red's proxy-ARP table
    }

    [Fact]
    public async Task Broadcast_is_replicated_only_to_hosts_with_endpoints_on_the_network()
    {
        await StartFromConverged();
        // The flood lists (checked exactly by ConvergedAsync) as the control socket shows them.
        var h1 = await f.Router(1).StatusAsync();
        Assert.Equal(["192.0.2.2:4789", "192.0.2.3:4789"], h1.Networks.Single(n => n.Name == "blue").FloodList);
        Assert.Equal(["192.0.2.3:4789", "192.0.2.4:4789"], h1.Networks.Single(n => n.Name == "red").FloodList);
        Assert.Empty((await f.Router(2).StatusAsync()).Networks.Single(n => n.Name == "red").FloodList);

        // And on the wire: a blue broadcast from b1 reaches h2 and h3, never h4 (no blue endpoint there).
        var before = await Task.WhenAll(Enumerable.Range(1, 4).Select(i => f.Router(i).StatusAsync()));
        using (var rx = NetnsSockets.Udp(Ns("b3"), new IPEndPoint(IPAddress.Any, 9999)))
        using (var tx = NetnsSockets.Udp(Ns("b1"), new IPEndPoint(IPAddress.Parse("198.18.0.11"), 0)))
        {
            tx.EnableBroadcast = true;
            for (int i = 0; i < 20; i++) tx.SendTo("blue-broadcast"u8.ToArray(), new IPEndPoint(IPAddress.Parse("198.18.0.255"), 9999));
            rx.ReceiveTimeout = 3000;
            var buf = new byte[64];
            Assert.Equal("blue-broadcast", System.Text.Encoding.ASCII.GetString(buf, 0, rx.Receive(buf)));
        }
        await Task.Delay(500, TestContext.Current.CancellationToken); // let the last datagrams land before reading counters
        var after = await Task.WhenAll(Enumerable.Range(1, 4).Select(i => f.Router(i).StatusAsync()));
        long Blue(Router.RouterStatus[] s, int host, Func<Router.NetworkCounters, long> c) => c(s[host - 1].Networks.Single(n => n.Name == "blue").Counters);
        long sent = Blue(after, 1, c => c.EncapsulatedDatagrams) - Blue(before, 1, c => c.EncapsulatedDatagrams);
        Assert.True(sent >= 40, $"h1 sent {sent} blue VXLAN datagrams for 20 broadcasts to two hosts");
        Assert.True(Blue(after, 2, c => c.RxFrames) - Blue(before, 2, c => c.RxFrames) >= 20, "h2 got the blue broadcasts");
        Assert.True(Blue(after, 3, c => c.RxFrames) - Blue(before, 3, c => c.RxFrames) >= 20, "h3 got the blue broadcasts");
        Assert.Equal(Blue(before, 4, c => c.RxFrames), Blue(after, 4, c => c.RxFrames)); // h4: nothing on blue
        Assert.Equal(before[3].Drops.Values.Sum(), after[3].Drops.Values.Sum());        // … not even dropped: never sent
    }

    [Theory]
    [InlineData(3)] // a host that joined through the seed
    [InlineData(1)] // the seed itself: it has no one to join when it comes back; the others reconnect to it
    public async Task A_killed_router_disappears_from_the_others_and_is_reachable_again_after_a_restart(int victim)
    {
        await StartFromConverged();
        var others = f.Running.Where(h => h != victim).ToList();
        var sw = Stopwatch.StartNew();
        await f.Router(victim).KillAsync(); // SIGKILL: no leave, others must detect the failure

        await GossipFixture.UntilEmptyAsync(() => f.DisagreementsAsync(others), Detect, $"h{victim}'s endpoints leave every other FDB");
        Figure($"killed h{victim} gone from every FDB, neighbour table, flood list and peer set", sw);

        // Its addresses are no longer answered: ARP from a neighbour finds nobody.
        var (probeNs, target) = victim == 3 ? ("b1", "198.18.0.13") : ("r4", "198.18.2.21");
        TestNetwork.Exec(Ns(probeNs), "ip neigh flush all").EnsureSuccess();
        Assert.False(TestNetwork.Ping(Ns(probeNs), target, count: 2, interval: 0.5, waitSeconds: 1, minReplies: 1));
        Assert.DoesNotContain("lladdr", TestNetwork.Exec(Ns(probeNs), $"ip neigh show {target}").StdOut);

        sw.Restart();
        await f.Router(victim).StartAsync();
        await Eventually.True(() => PingOnce(Ns(probeNs), target), Converge, $"{probeNs} → {target} after h{victim} restarted");
        Figure($"restarted h{victim} reachable", sw);
        await f.ConvergedAsync(Converge, $"cluster with h{victim} back");
        Figure($"restarted h{victim} in every FDB", sw);
        var failures = await PingFailures(f.Running);
        Assert.True(failures.Count == 0, "no replies: " + string.Join(", ", failures));
    }

    [Fact]
    public async Task A_host_that_joins_late_is_reachable_and_a_graceful_leave_removes_it_at_once()
    {
        await StartFromConverged();
        var sw = Stopwatch.StartNew();
        await f.Router(5).StartAsync();
        await Eventually.True(() => PingOnce(Ns("b1"), "198.18.0.15") && PingOnce(Ns("r4"), "198.18.2.25"), Converge, "b1 → b5 and r4 → r5");
        Figure("late h5 reachable", sw);
        await f.ConvergedAsync(Converge, "five hosts");
        Figure("late h5 in every FDB", sw);
        var failures = await PingFailures([1, 2, 3, 4, 5]);
        Assert.True(failures.Count == 0, "no replies: " + string.Join(", ", failures));

        // SIGTERM: the router leaves before it stops; the others drop it without waiting for failure detection.
        sw.Restart();
        Assert.Equal(0, await f.Router(5).StopAsync());
        await GossipFixture.UntilEmptyAsync(() => f.DisagreementsAsync([1, 2, 3, 4]), Converge, "h5 gone after leaving");
        Figure("h5 gone after a graceful leave", sw);
        var m = await f.MembersAsync(1);
        Assert.Equal("left", m.Members.Single(x => x.Vtep == "192.0.2.5:4789").State);
    }

    [Fact]
    public async Task A_partitioned_host_heals_on_its_own()
    {
        await StartFromConverged();
        var sw = Stopwatch.StartNew();
        f.Net.SetHostLink(Ns("h4"), up: false);
        try
        {
            // Both sides see the other fail: h4's endpoint leaves h1–h3; h4 forgets h1–h3.
            await GossipFixture.UntilEmptyAsync(() => f.DisagreementsAsync([1, 2, 3]), Detect, "h4 gone from h1–h3");
            Figure("partitioned h4 gone from h1–h3", sw);
            await GossipFixture.UntilEmptyAsync(() => f.DisagreementsAsync([4]), DetectAlone, "h1–h3 gone from h4");
            Figure("h1–h3 gone from the isolated h4", sw);
        }
        finally
        {
            f.Net.SetHostLink(Ns("h4"), up: true);
        }
        sw.Restart();
        await Eventually.True(() => PingOnce(Ns("r1"), "198.18.2.24"), Converge, "r1 → r4 after the link came back");
        Figure("partition healed: r1 → r4", sw);
        await f.ConvergedAsync(Converge, "cluster healed");
        Figure("partition healed: every FDB", sw);
        var m = await f.MembersAsync(4);
        Assert.Equal(4, m.Members.Count(x => x.State == "alive"));
    }

    [Fact]
    public async Task Members_command_prints_the_cluster_and_its_json_for_scripts()
    {
        await StartFromConverged();
        var h1 = f.Router(1);
        string text = h1.Cli("members", "--name", h1.Name).EnsureSuccess().StdOut;
        output.WriteLine(text);
        Assert.Contains($"Node {h1.Name}-192.0.2.1 at 192.0.2.1:7946   gossip encrypted", text); // default node name: router name + bind address
        Assert.Contains("NAME", text);
        Assert.Contains("INCARNATION", text);
        for (int i = 1; i <= 4; i++)
            Assert.Matches($@"{f.Router(i).Name}-192\.0\.2\.{i}( \*)?\s+192\.0\.2\.{i}:7946\s+alive\s+\d+\s+2 \[1,5\]\s+0 \[0,0\]\s+192\.0\.2\.{i}:4789", text);
        Assert.Contains("blue,red", text);   // h1 and h3 are on both networks

        using var json = JsonDocument.Parse(h1.Cli("members", "--name", h1.Name, "--json").EnsureSuccess().StdOut);
        var members = json.RootElement.GetProperty("members").EnumerateArray().ToList();
        Assert.Equal(4, members.Count(m => m.GetProperty("state").GetString() == "alive"));
        var h4 = members.Single(m => m.GetProperty("vtep").GetString() == "192.0.2.4:4789");
        Assert.Equal(["red"], h4.GetProperty("networks").EnumerateArray().Select(x => x.GetString()));
        Assert.Equal(2, h4.GetProperty("protocol").GetProperty("current").GetInt32());
        Assert.True(json.RootElement.GetProperty("encrypted").GetBoolean());
        Assert.True(json.RootElement.GetProperty("joined").GetBoolean());
    }

    [Fact]
    public async Task A_static_router_says_gossip_is_disabled_and_its_vxlan_is_refused_by_members()
    {
        await StartFromConverged();
        string ns = f.Ns.TryGetValue("st", out var existing) ? existing : f.Ns["st"] = f.Net.AddHost("st", "192.0.2.50/24");
        using var stat = new RouterProcess(f.Net, ns, f.Net.Prefix + "static", """
            underlay: { address: 192.0.2.50 }
            peers: [192.0.2.1]
            networks: [ { name: blue, vni: 4097, subnet: 198.18.0.0/24 } ]
            """);
        await stat.StartAsync();
        var r = stat.Cli("members", "--name", stat.Name);
        Assert.Equal(1, r.ExitCode);
        Assert.Contains("static mode", r.StdErr);
        Assert.DoesNotContain("   at ", r.StdErr);

        // Not a member: VXLAN from its address is dropped as unknown_source by h1.
        long before = (await f.Router(1).StatusAsync()).Drops["unknown_source"];
        using (var u = NetnsSockets.Udp(ns, new IPEndPoint(IPAddress.Parse("192.0.2.50"), 0)))
        {
            byte[] frame = [0x08, 0, 0, 0, 0, 0x10, 0x01, 0, 0x02, 0x00, 0xc6, 0x12, 0x00, 0x0b, 0x02, 0x99, 0, 0, 0, 1, 0x08, 0x00, .. new byte[46]];
            for (int i = 0; i < 10; i++) u.SendTo(frame, new IPEndPoint(IPAddress.Parse("192.0.2.1"), 4789));
        }
        await Eventually.True(async () => (await f.Router(1).StatusAsync()).Drops["unknown_source"] >= before + 10, Converge, "h1 drops VXLAN from a non-member");
        Assert.Equal(0, await stat.StopAsync());
    }
}
