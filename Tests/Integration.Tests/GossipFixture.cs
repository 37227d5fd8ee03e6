using System.Net;
using UserOverlay.Cli.Daemon;
using UserOverlay.Control.Gossip;
using UserOverlay.Router;
using UserOverlay.Testing.Common;

namespace UserOverlay.Integration.Tests;

/// <summary>
/// Gossip mode in namespaces: hosts h1–h4 on the underlay bridge (192.0.2.1–4), each running
/// `useroverlay up` with a <c>gossip:</c> section and no static peers; h1 is the only seed (its own
/// join list is empty) and is started <em>last</em>, so the others must keep retrying until it
/// answers. h5 (192.0.2.5) is configured too, but only started by the late-join test. Two networks,
/// not every host on each, so broadcast replication can be checked per network:
/// <code>
///   blue (VNI 4097, 198.18.0.0/24): b1 .11 on h1, b2 .12 on h2, b3 .13 on h3, (b5 .15 on h5)
///   red  (VNI 4098, 198.18.2.0/24): r1 .21 on h1, r3 .23 on h3, r4 .24 on h4, (r5 .25 on h5)
/// </code>
/// The LAN profile (500 ms probes, given explicitly) with suspicion shortened through the
/// configuration (multiplier 3 instead of 6: 1.5 s instead of 3 s), 2 s reconnects to failed
/// members and anti-entropy every 10 s instead of 30 s: gossip can leave a hole when hosts join at
/// the same moment (a record learned by push/pull is not gossiped on), and the next push/pull fills it.
/// </summary>
public sealed class GossipFixture : IAsyncLifetime
{
    /// <summary>The cluster's key (as `serf keygen` prints one).</summary>
    public const string Key = "cQBCQpyT3UDNeB9uT7qCaUqEyHEPIRmkgxSq/1iHxc0=";

    public const int Hosts = 5, CoreHosts = 4;

    public TestNetwork Net { get; private set; } = null!;
    /// <summary>Routers[i - 1] runs on host i.</summary>
    public RouterProcess[] Routers { get; private set; } = [];
    public Dictionary<string, string> Ns { get; } = new();

    public static readonly (string Ns, int Host, string Network, string Address)[] Endpoints =
    [
        ("b1", 1, "blue", "198.18.0.11"), ("r1", 1, "red", "198.18.2.21"),
        ("b2", 2, "blue", "198.18.0.12"),
        ("b3", 3, "blue", "198.18.0.13"), ("r3", 3, "red", "198.18.2.23"),
        ("r4", 4, "red", "198.18.2.24"),
        ("b5", 5, "blue", "198.18.0.15"), ("r5", 5, "red", "198.18.2.25"),
    ];

    public static readonly string[] Networks = ["blue", "red"];

    public async ValueTask InitializeAsync()
    {
        Requires.Root();
        Requires.Tool("ip", "iproute2");
        Requires.Tool("ping", "iputils-ping");
        Net = new TestNetwork("gs");
        for (int i = 1; i <= Hosts; i++) Ns[$"h{i}"] = Net.AddHost($"h{i}", $"192.0.2.{i}/24");
        foreach (var e in Endpoints) Ns[e.Ns] = Net.AddNamespace(e.Ns);
        Routers = Enumerable.Range(1, Hosts).Select(i => new RouterProcess(Net, Ns[$"h{i}"], $"{Net.Prefix}h{i}", Config(i))).ToArray();

        // The seed comes up last: h2–h4 start with nobody to join and must retry in the background.
        await Task.WhenAll(Routers[1..CoreHosts].Select(r => r.StartAsync()));
        await Routers[0].StartAsync();
    }

    /// <summary>Host i's configuration: gossip with h1 as the only seed, no static peers.</summary>
    public string Config(int host)
    {
        string join = host == 1 ? "[]" : "[192.0.2.1]";
        var eps = Endpoints.Where(e => e.Host == host)
            .Select(e => $"  - {{ network: {e.Network}, netns: {Ns[e.Ns]}, address: {e.Address}/24 }}");
        return $$"""
            underlay: { address: 192.0.2.{{host}} }
            gossip:
              bind: 192.0.2.{{host}}
              join: {{join}}
              key: {{Key}}
              probe_interval: 500ms
              suspicion_mult: 3
              push_pull_interval: 10s
              reconnect_interval: 2s
            networks:
              - { name: blue, vni: 4097, subnet: 198.18.0.0/24 }
              - { name: red, vni: 4098, subnet: 198.18.2.0/24 }
            endpoints:
            {{string.Join("\n", eps)}}
            """;
    }

    public RouterProcess Router(int host) => Routers[host - 1];

    public static VtepEndpoint Vtep(int host) => new(0xC000_0200u + (uint)host, 4789);

    public static string Mac(string address) => MacAddress.FromIPv4(IPAddress.Parse(address)).ToString();

    /// <summary>Hosts whose router runs now.</summary>
    public IReadOnlyList<int> Running => Enumerable.Range(1, Hosts).Where(i => Router(i).IsRunning).ToList();

    /// <summary>Hosts with endpoints on <paramref name="network"/>.</summary>
    public static IEnumerable<int> HostsOn(string network) => Endpoints.Where(e => e.Network == network).Select(e => e.Host).Distinct();

    /// <summary>
    /// Where host <paramref name="host"/>'s tables disagree with a cluster of <paramref name="alive"/>
    /// (empty when they agree): in every network it has endpoints on, each endpoint of another live
    /// host is in the FDB (source gossip, that host's VTEP) and among the neighbours, no endpoint of
    /// another host is, and the flood list is exactly the other live hosts with endpoints there.
    /// </summary>
    public static List<string> Disagreements(int host, RouterStatus s, IReadOnlyCollection<int> alive)
    {
        var bad = new List<string>();
        foreach (var net in Networks)
        {
            var n = s.Networks.Single(x => x.Name == net);
            if (!HostsOn(net).Contains(host))
            {
                if (n.Fdb.Any(e => e.Source == "gossip")) bad.Add($"h{host} {net}: gossip entries on a network it has no endpoint on");
                continue;
            }
            foreach (var e in Endpoints.Where(e => e.Network == net && e.Host != host))
            {
                bool should = alive.Contains(e.Host);
                bool inFdb = n.Fdb.Any(f => f.Mac == Mac(e.Address) && f.Source == "gossip" && f.Destination == Vtep(e.Host).ToString());
                bool inNeigh = n.Neighbors.Any(x => x.Address == e.Address && x.Mac == Mac(e.Address) && x.Source == "gossip");
                bool anyFdb = n.Fdb.Any(f => f.Mac == Mac(e.Address));
                bool anyNeigh = n.Neighbors.Any(x => x.Address == e.Address);
                if (should && !(inFdb && inNeigh)) bad.Add($"h{host} {net}: missing {e.Ns} {e.Address} (fdb {inFdb}, neighbour {inNeigh})");
                if (!should && (anyFdb || anyNeigh)) bad.Add($"h{host} {net}: still has {e.Ns} {e.Address} of stopped h{e.Host}");
            }
            var flood = HostsOn(net).Where(h => h != host && alive.Contains(h)).Select(h => Vtep(h).ToString()).Order().ToList();
            if (!n.FloodList.Order().SequenceEqual(flood))
                bad.Add($"h{host} {net}: flood list [{string.Join(", ", n.FloodList)}], expected [{string.Join(", ", flood)}]");
        }
        var peers = alive.Where(h => h != host).Select(h => Vtep(h).ToString()).Order();
        if (!s.Peers.Order().SequenceEqual(peers)) bad.Add($"h{host}: accepts VXLAN from [{string.Join(", ", s.Peers)}], expected [{string.Join(", ", peers)}]");
        return bad;
    }

    /// <summary>Where the running routers disagree with the cluster of running hosts (empty: converged).</summary>
    public async Task<List<string>> DisagreementsAsync(IReadOnlyCollection<int>? alive = null, IEnumerable<int>? observers = null)
    {
        alive ??= Running;
        var bad = new List<string>();
        foreach (int h in observers ?? alive)
        {
            try { bad.AddRange(Disagreements(h, await Router(h).StatusAsync(), alive)); }
            catch (RouterException e) { bad.Add($"h{h}: {e.Message}"); }
        }
        return bad;
    }

    /// <summary>Waits until every running router agrees with the cluster of running hosts.</summary>
    public Task ConvergedAsync(TimeSpan timeout, string what) => UntilEmptyAsync(() => DisagreementsAsync(), timeout, what);

    /// <summary><see cref="Eventually.True(Func{Task{bool}}, TimeSpan, string, int)"/> over a list of problems; a timeout names the last ones seen.</summary>
    public static async Task UntilEmptyAsync(Func<Task<List<string>>> problems, TimeSpan timeout, string what)
    {
        List<string> last = [];
        try
        {
            await Eventually.True(async () => (last = await problems()).Count == 0, timeout, what, pollMilliseconds: 200);
        }
        catch (Exception e) when (last.Count > 0)
        {
            Assert.Fail($"{e.Message}\n  still: {string.Join("\n  still: ", last)}");
        }
    }

    public async Task<MembersResponse> MembersAsync(int host)
    {
        using var c = new ControlClient(ControlApi.SocketPath(Router(host).Name));
        return ControlJson.Read(await c.GetAsync("v1/members"), ControlJson.Default.MembersResponse);
    }

    public async ValueTask DisposeAsync()
    {
        foreach (var r in Routers) r.Dispose();
        Net?.Dispose();
        await Task.CompletedTask;
    }
}

[CollectionDefinition(nameof(GossipCollection))]
public sealed class GossipCollection : ICollectionFixture<GossipFixture>;
