using System.Diagnostics;
using System.Net;
using UserOverlay.Membership.Table;
using UserOverlay.Membership.Testing;
using UserOverlay.Testing.Common;

namespace UserOverlay.Membership.Tests;

/// <summary>
/// Failure detection with the library's defaults (<see cref="MembershipOptions.DefaultLan"/>, nothing
/// tuned), real timers, on the in-memory transport.
/// </summary>
public class FailureDetectionTests(ITestOutputHelper output)
{
    private void Report(string line)
    {
        output.WriteLine(line);
        Console.WriteLine("[figures] " + line);
    }

    /// <summary>Hosts running an endpoint table each, with the LAN defaults; each publishes one endpoint in "net1".</summary>
    private sealed class Hosts : IAsyncDisposable
    {
        public readonly InMemoryNetwork Net;
        public readonly List<EndpointTable> Tables = [];
        public readonly Dictionary<string, TableRecorder> Rec = [];

        private readonly Func<MembershipOptions, MembershipOptions> _tweak;

        public Hosts(int? seed = null, Func<MembershipOptions, MembershipOptions>? tweak = null)
        {
            Net = new InMemoryNetwork(seed);
            _tweak = tweak ?? (o => o);
        }

        public static ulong MacOf(int i) => 0x02_42_c6_12_00_00UL + (ulong)i;

        public async Task AddAsync(int i)
        {
            string name = $"h{i:00}";
            var rec = new TableRecorder();
            var t = await EndpointTable.StartAsync(new EndpointTableOptions
            {
                Membership = _tweak(MembershipOptions.DefaultLan()) with { Name = name, Transport = Net.CreateTransport(name) },
                VtepAddress = IPAddress.Parse($"192.0.2.{i}"),
                Observer = rec,
            });
            t.PublishEndpoint("net1", MacOf(i), IPAddress.Parse($"198.18.0.{i}"));
            Tables.Add(t);
            Rec[name] = rec;
        }

        public static async Task<Hosts> StartAsync(int n, int? seed = null, Func<MembershipOptions, MembershipOptions>? tweak = null)
        {
            var h = new Hosts(seed, tweak);
            for (int i = 1; i <= n; i++) await h.AddAsync(i);
            var seedEp = h.Tables[0].Memberlist.AdvertiseEndPoint;
            foreach (var t in h.Tables.Skip(1)) await t.JoinAsync([seedEp]);
            await Eventually.True(() => h.Rec.Values.All(r => r.Fdb.Count == n - 1), TimeSpan.FromSeconds(30), "every host has every other host's endpoint");
            return h;
        }

        public async ValueTask DisposeAsync() => await Task.WhenAll(Tables.Select(t => t.DisposeAsync().AsTask()));
    }

    /// <summary>Kills one host (no leave) and returns, per other host, the time until its endpoint left that host's FDB.</summary>
    private sealed record Detection(List<TimeSpan> Gone, TimeSpan FirstSuspect, TimeSpan FirstDead);

    private static async Task<Detection> KillAndTimeAsync(Hosts h, int victimIndex, TimeSpan limit, bool vanish = false)
    {
        var victim = h.Tables[victimIndex];
        ulong mac = Hosts.MacOf(victimIndex + 1);
        var observers = h.Tables.Where(t => t != victim).ToList();
        var sw = Stopwatch.StartNew();
        if (vanish) h.Net.Freeze(victim.NodeName);
        else await victim.DisposeAsync();
        var gone = new Dictionary<string, TimeSpan>();
        TimeSpan? suspect = null, dead = null;
        await Eventually.True(() =>
        {
            foreach (var o in observers)
            {
                var st = o.Memberlist.GetMember(victim.NodeName)?.State;
                if (suspect is null && st is MemberState.Suspect or MemberState.Dead) suspect = sw.Elapsed;
                if (dead is null && st is MemberState.Dead) dead = sw.Elapsed;
            }
            foreach (var o in observers)
                if (!gone.ContainsKey(o.NodeName) && !h.Rec[o.NodeName].Fdb.ContainsKey(("net1", mac)))
                    gone[o.NodeName] = sw.Elapsed;
            return gone.Count == observers.Count;
        }, limit, "the killed host's endpoint is gone from every other host's FDB", pollMilliseconds: 10);
        return new Detection([.. gone.Values], suspect ?? TimeSpan.Zero, dead ?? TimeSpan.Zero);
    }

    public static TheoryData<string> Variants => ["memberlist", "defaults"];

    private static MembershipOptions Variant(string v, MembershipOptions o) => v switch
    {
        "memberlist" => o with { ProbeInterval = TimeSpan.FromSeconds(1), ProbeTimeout = TimeSpan.FromMilliseconds(500), SuspicionMult = 4, SuspicionMaxTimeoutMult = 6, RefusedProbeSuspicionTimeout = TimeSpan.Zero },
        _ => o,
    };

    [Theory]
    [MemberData(nameof(Variants))]
    public async Task Measure_Variants(string v)
    {
        const int trials = 10;
        var kills = await Task.WhenAll(Enumerable.Range(0, trials).Select(async _ =>
        {
            await using var h = await Hosts.StartAsync(4, tweak: o => Variant(v, o));
            await Task.Delay(TimeSpan.FromSeconds(2));
            return await KillAndTimeAsync(h, 3, TimeSpan.FromSeconds(60));
        }));
        var vanished = await Task.WhenAll(Enumerable.Range(0, trials).Select(async _ =>
        {
            await using var h = await Hosts.StartAsync(4, tweak: o => Variant(v, o));
            await Task.Delay(TimeSpan.FromSeconds(2));
            return await KillAndTimeAsync(h, 3, TimeSpan.FromSeconds(60), vanish: true);
        }));
        foreach (var r in vanished)
            Report($"{v}: 4 hosts: vanished host suspected after {r.FirstSuspect.TotalSeconds:0.00} s, first dead {r.FirstDead.TotalSeconds:0.00} s, endpoint gone first after {r.Gone.Min().TotalSeconds:0.00} s, everywhere after {r.Gone.Max().TotalSeconds:0.00} s");
        foreach (var r in kills)
            Report($"{v}: 4 hosts: killed host suspected after {r.FirstSuspect.TotalSeconds:0.00} s, first dead {r.FirstDead.TotalSeconds:0.00} s, endpoint gone first after {r.Gone.Min().TotalSeconds:0.00} s, everywhere after {r.Gone.Max().TotalSeconds:0.00} s");
        foreach (bool hold in new[] { true, false })
        {
            var deaths = await Task.WhenAll(Enumerable.Range(0, trials).Select(async _ =>
            {
                await using var h = await Hosts.StartAsync(4, tweak: o => Variant(v, o));
                await Task.Delay(TimeSpan.FromSeconds(2));
                if (hold) h.Net.Pause("h04"); else h.Net.Freeze("h04");
                await Task.Delay(TimeSpan.FromSeconds(2));
                if (hold) h.Net.Pause("h04", false); else h.Net.Freeze("h04", false);
                await Task.Delay(TimeSpan.FromSeconds(8));
                return (h.Tables.Sum(t => t.Memberlist.Stats.DeclaredDead), h.Tables.Sum(t => t.Memberlist.Stats.SuspicionsStarted), h.Rec.Values.Sum(r => r.Changes.Count(c => c.Kind == EndpointChangeKind.Removed)));
            }));
            Report($"{v}: 2 s {(hold ? "pause" : "blackout")}: deaths {string.Join(",", deaths.Select(d => d.Item1))}; suspicions {string.Join(",", deaths.Select(d => d.Item2))}; removals {string.Join(",", deaths.Select(d => d.Item3))}");
        }
    }

    [Fact]
    public async Task Measure_KilledHost_EndpointsGone_Defaults()
    {
        const int trials = 6;
        var results = await Task.WhenAll(Enumerable.Range(0, trials).Select(async _ =>
        {
            await using var h = await Hosts.StartAsync(4);
            await Task.Delay(TimeSpan.FromSeconds(2));
            return await KillAndTimeAsync(h, 3, TimeSpan.FromSeconds(60));
        }));
        foreach (var r in results)
            Report($"4 hosts, defaults: killed host suspected after {r.FirstSuspect.TotalSeconds:0.00} s, first dead {r.FirstDead.TotalSeconds:0.00} s, endpoint gone first after {r.Gone.Min().TotalSeconds:0.00} s, everywhere after {r.Gone.Max().TotalSeconds:0.00} s");
    }
}
