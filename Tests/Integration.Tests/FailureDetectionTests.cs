using System.Diagnostics;
using System.Globalization;
using UserOverlay.Cli.Daemon;
using UserOverlay.Control.Gossip;
using UserOverlay.Router;
using UserOverlay.Testing.Common;

namespace UserOverlay.Integration.Tests;

/// <summary>
/// Four gossip-mode hosts (h1–h4 on 192.0.2.1–4, h1 the seed) with the <em>default</em> gossip settings:
/// no timing in the configuration. Each host has one endpoint on network blue (198.18.4.1x) and serves /metrics on
/// 127.0.0.1:9464 of its namespace.
/// </summary>
public sealed class DefaultGossipFixture : IAsyncLifetime
{
    public const int Hosts = 4;

    public TestNetwork Net { get; private set; } = null!;
    public RouterProcess[] Routers { get; private set; } = [];

    public RouterProcess Router(int host) => Routers[host - 1];

    public static string Address(int host) => $"198.18.4.{10 + host}";

    public static string Mac(int host) => MacAddress.FromIPv4(System.Net.IPAddress.Parse(Address(host))).ToString();

    public async ValueTask InitializeAsync()
    {
        Requires.Root();
        Requires.Tool("ip", "iproute2");
        Net = new TestNetwork("fd");
        var ns = new string[Hosts + 1];
        var eps = new string[Hosts + 1];
        for (int i = 1; i <= Hosts; i++)
        {
            ns[i] = Net.AddHost($"h{i}", $"192.0.2.{i}/24");
            eps[i] = Net.AddNamespace($"e{i}");
        }
        Routers = Enumerable.Range(1, Hosts).Select(i => new RouterProcess(Net, ns[i], $"{Net.Prefix}h{i}", $$"""
            underlay: { address: 192.0.2.{{i}} }
            metrics: 127.0.0.1:9464
            gossip:
              bind: 192.0.2.{{i}}
              join: [192.0.2.1]
            networks:
              - { name: blue, vni: 4101, subnet: 198.18.4.0/24 }
            endpoints:
              - { network: blue, netns: {{eps[i]}}, address: {{Address(i)}}/24 }
            """)).ToArray();
        await Routers[0].StartAsync();
        await Task.WhenAll(Routers[1..].Select(r => r.StartAsync()));
    }

    /// <summary>Whether <paramref name="observer"/>'s FDB has host <paramref name="host"/>'s endpoint (source gossip); null if the observer does not answer.</summary>
    public async Task<bool?> HasEndpointAsync(int observer, int host)
    {
        try
        {
            var s = await Router(observer).StatusAsync();
            return s.Networks.Single(n => n.Name == "blue").Fdb.Any(e => e.Mac == Mac(host) && e.Source == "gossip");
        }
        catch (RouterException)
        {
            return null;
        }
    }

    /// <summary>The state (alive, suspect, dead, left) of host <paramref name="host"/> as <paramref name="observer"/> sees it, or null.</summary>
    public async Task<string?> StateAsync(int observer, int host)
    {
        try
        {
            using var c = new ControlClient(ControlApi.SocketPath(Router(observer).Name));
            var m = ControlJson.Read(await c.GetAsync("v1/members"), ControlJson.Default.MembersResponse);
            return m.Members.FirstOrDefault(x => x.Name == $"{Router(host).Name}-192.0.2.{host}" || x.Address.StartsWith($"192.0.2.{host}:", StringComparison.Ordinal))?.State;
        }
        catch (RouterException)
        {
            return null;
        }
    }

    /// <summary>Host <paramref name="host"/>'s /metrics, read by the strict text-format parser.</summary>
    public PrometheusText Scrape(int host) =>
        PrometheusText.Parse(TestNetwork.Exec(Router(host).HostNamespace, "curl -s -m 5 http://127.0.0.1:9464/metrics").EnsureSuccess().StdOut);

    /// <summary>Waits until every running router has every other running router's endpoint.</summary>
    public async Task ConvergedAsync(IReadOnlyCollection<int> running)
    {
        await Eventually.True(async () =>
        {
            foreach (int o in running)
                foreach (int h in running)
                    if (h != o && await HasEndpointAsync(o, h) != true) return false;
            return true;
        }, TimeSpan.FromSeconds(60), "every running host has every other running host's endpoint", pollMilliseconds: 200);
    }

    public async ValueTask DisposeAsync()
    {
        foreach (var r in Routers)
        {
            // A router left stopped by a failed test must be continued before it can be terminated.
            if (r.IsRunning) Shell.Run("kill", ["-CONT", r.Pid.ToString(CultureInfo.InvariantCulture)]);
            r.Dispose();
        }
        Net?.Dispose();
        await Task.CompletedTask;
    }
}

/// <summary>
/// Failure detection between real `useroverlay up` processes with the default gossip settings:
/// a SIGKILLed router's endpoints leave the other hosts' FDBs within 5 s, and a router stopped
/// for 2 s (SIGSTOP, then SIGCONT) is never declared dead and never loses its endpoints elsewhere.
/// Either order works: the pause test watches whichever hosts run, and the kill leaves three.
/// </summary>
public sealed class FailureDetectionTests(DefaultGossipFixture f, ITestOutputHelper output) : IClassFixture<DefaultGossipFixture>
{
    /// <summary>The promised bound: a dead host forgotten within 5 s with the defaults.</summary>
    private static readonly TimeSpan Bound = TimeSpan.FromSeconds(5);

    private void Figure(string line)
    {
        output.WriteLine("[figures] " + line);
        Console.WriteLine("[figures] " + line);
    }

    [Fact]
    public async Task A_router_stopped_for_2_s_is_not_declared_dead_and_keeps_its_endpoints_elsewhere()
    {
        var running = Enumerable.Range(1, DefaultGossipFixture.Hosts).Where(h => f.Router(h).IsRunning).ToList();
        await f.ConvergedAsync(running);
        const int paused = 2;
        var observers = running.Where(h => h != paused).ToList();
        string pid = f.Router(paused).Pid.ToString(CultureInfo.InvariantCulture);

        var sw = Stopwatch.StartNew();
        Shell.Run("kill", ["-STOP", pid]).EnsureSuccess();
        var problems = new List<string>();
        var states = new HashSet<string>();
        bool continued = false;
        // Watch during the pause and for 8 s after it (longer than any suspicion timeout with the defaults).
        while (sw.Elapsed < TimeSpan.FromSeconds(10))
        {
            if (!continued && sw.Elapsed >= TimeSpan.FromSeconds(2))
            {
                Shell.Run("kill", ["-CONT", pid]).EnsureSuccess();
                continued = true;
            }
            foreach (int o in observers)
            {
                if (await f.StateAsync(o, paused) is { } st)
                {
                    states.Add(st);
                    if (st is "dead" or "left") problems.Add($"{sw.Elapsed.TotalSeconds:0.0} s: h{o} sees h{paused} {st}");
                }
                if (await f.HasEndpointAsync(o, paused) == false) problems.Add($"{sw.Elapsed.TotalSeconds:0.0} s: h{o} lost h{paused}'s endpoint");
            }
            await Task.Delay(100, TestContext.Current.CancellationToken);
        }
        Figure($"h{paused} stopped 2 s: states seen by the others {string.Join(", ", states.Order())}; problems {problems.Count}");
        Assert.True(problems.Count == 0, string.Join("\n", problems));
        Assert.True(f.Router(paused).IsRunning, "the continued router still runs");
    }

    [Fact]
    public async Task B_a_killed_routers_endpoints_leave_every_other_FDB_within_5_s()
    {
        var running = Enumerable.Range(1, DefaultGossipFixture.Hosts).Where(h => f.Router(h).IsRunning).ToList();
        await f.ConvergedAsync(running);
        const int victim = 4;
        var observers = running.Where(h => h != victim).ToList();
        Requires.Tool("curl", "curl");
        // useroverlay_gossip_members{state}: the observers count every running host alive (themselves included).
        await Eventually.True(() => observers.All(o => f.Scrape(o).Value("useroverlay_gossip_members", "state=alive") == running.Count),
            TimeSpan.FromSeconds(10), $"every observer's useroverlay_gossip_members{{state=\"alive\"}} is {running.Count}", pollMilliseconds: 200);
        double deadBefore = f.Scrape(observers[0]).Value("useroverlay_gossip_members", "state=dead");

        var sw = Stopwatch.StartNew();
        await f.Router(victim).KillAsync(); // SIGKILL: no goodbye, the others must detect the failure
        var gone = new Dictionary<int, TimeSpan>();
        while (gone.Count < observers.Count && sw.Elapsed < TimeSpan.FromSeconds(30))
        {
            await Task.WhenAll(observers.Where(o => !gone.ContainsKey(o)).Select(async o =>
            {
                if (await f.HasEndpointAsync(o, victim) == false)
                    lock (gone) gone.TryAdd(o, sw.Elapsed);
            }));
            await Task.Delay(50, TestContext.Current.CancellationToken);
        }
        Figure($"killed h{victim}: its endpoint left the FDB of {string.Join(", ", gone.OrderBy(g => g.Key).Select(g => $"h{g.Key} after {g.Value.TotalSeconds:0.00} s"))}");
        Assert.Equal(observers.Count, gone.Count);
        Assert.All(gone, g => Assert.True(g.Value <= Bound, $"h{g.Key} still had h{victim}'s endpoint {g.Value.TotalSeconds:0.00} s after the kill"));
        // The proxy-ARP entry went with it, and the survivors still have each other.
        foreach (int o in observers)
        {
            var s = await f.Router(o).StatusAsync();
            Assert.DoesNotContain(s.Networks.Single(n => n.Name == "blue").Neighbors, n => n.Address == DefaultGossipFixture.Address(victim));
        }
        await f.ConvergedAsync(observers);
        // The members gauge moved with it: one alive fewer, the victim counted dead (until it is reaped, 30 s later).
        string last = "";
        Task Settled() => Eventually.True(() => observers.All(o =>
        {
            var m = f.Scrape(o);
            last = $"h{o}: " + string.Join(", ", m.Find("useroverlay_gossip_members").Select(s => $"{s.Labels["state"]} {s.Value}"));
            return m.Types["useroverlay_gossip_members"] == "gauge"
                && m.Value("useroverlay_gossip_members", "state=alive") == running.Count - 1
                && m.Value("useroverlay_gossip_members", "state=dead") == deadBefore + 1
                && m.Value("useroverlay_gossip_members") == running.Count;
        }), TimeSpan.FromSeconds(10), $"useroverlay_gossip_members: {running.Count - 1} alive and the victim dead on every observer", pollMilliseconds: 200);
        try { await Settled(); }
        catch (Exception e) { Assert.Fail($"{e.Message}; last seen {last}"); }
        Figure($"useroverlay_gossip_members after the kill, {last}");
    }
}
