using System.Diagnostics;
using UserOverlay.Testing.Common;
using Xunit.Sdk;

namespace UserOverlay.Membership.Tests;

/// <summary>
/// Larger in-process clusters: a 200-member join storm, and a long run under 10 % packet loss.
/// They report their figures to the test output (and the console) and assert behaviour, never speed.
/// </summary>
public class ScaleTests(ITestOutputHelper output)
{
    private void Report(string line)
    {
        output.WriteLine(line);
        Console.WriteLine("[figures] " + line);
    }

    [Fact]
    public async Task JoinStorm_200Members_Converge()
    {
        const int n = 200;
        // LAN formulas with memberlist's Local timings; compression off to spare the 2 shared CPU cores
        // (it changes bytes, not behaviour: compressed gossip is covered by the other tests).
        await using var c = new InMemoryCluster((_, o) => o with
        {
            ProbeInterval = TimeSpan.FromSeconds(1),
            ProbeTimeout = TimeSpan.FromMilliseconds(500),
            GossipInterval = TimeSpan.FromMilliseconds(200),
            PushPullInterval = TimeSpan.FromSeconds(5), // × 4 at 200 members (memberlist's push/pull scaling)
            TcpTimeout = TimeSpan.FromSeconds(5),
            GossipToTheDeadTime = TimeSpan.FromSeconds(30),
            EnableCompression = false,
        });
        for (int i = 0; i < n; i++) await c.AddAsync($"m{i:000}");
        var seed = c.Members[0].AdvertiseEndPoint;
        var sw = Stopwatch.StartNew();
        // The storm: everyone joins the same seed at once.
        var joins = c.Members.Skip(1).Select(m => m.JoinAsync([seed])).ToList();
        int[] results = await Task.WhenAll(joins);
        Assert.All(results, r => Assert.Equal(1, r));
        var joinedAt = sw.Elapsed;
        var names = c.Members.Select(m => m.Name).ToList();
        var lastReport = TimeSpan.Zero;
        TimeSpan? firstNearlyConverged = null;
        await Eventually.True(() =>
        {
            var counts = c.Members.Select(m => m.NumMembers).ToList();
            if (sw.Elapsed - lastReport > TimeSpan.FromSeconds(2))
            {
                lastReport = sw.Elapsed;
                output.WriteLine($"{sw.Elapsed.TotalSeconds:0.0} s: members known min {counts.Min()} avg {counts.Average():0.0}; drops {c.Members.Sum(m => m.Drops.Total)}; packets {c.Network.PacketsSent} lost {c.Network.PacketsDropped}");
            }
            if (firstNearlyConverged is null && counts.Sum() >= 0.999 * n * n) firstNearlyConverged = sw.Elapsed;
            return counts.All(x => x == n);
        }, TimeSpan.FromSeconds(120), "200 members see 200 live members", pollMilliseconds: 250);
        var converged = sw.Elapsed;
        var gossipPhase = firstNearlyConverged ?? converged;
        Assert.True(InMemoryCluster.AllSee(c.Members, names), "everyone sees everyone alive");
        long falseDead = c.Members.Sum(m => m.Stats.DeclaredDead);
        Assert.Equal(0, falseDead);
        Report($"join storm: {n} members, all {n - 1} joins answered after {joinedAt.TotalSeconds:0.0} s, 99.9 % of member pairs known after {gossipPhase.TotalSeconds:0.0} s (gossip), full convergence (every member lists {n} live, the last pairs by push/pull) after {converged.TotalSeconds:0.0} s; " +
               $"packets {c.Network.PacketsSent}, suspicions {c.Members.Sum(m => m.Stats.SuspicionsStarted)}, false deaths {falseDead}");
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task TenPercentLoss_NoLiveMemberDeclaredDead_KilledOneDetected(bool udpOnly)
    {
        const int n = 24;
        var run = TimeSpan.FromSeconds(udpOnly ? 20 : 30);
        // Shortened Local intervals; LAN-like probing (3 indirect checks, suspicion multiplier 4).
        await using var c = new InMemoryCluster((_, o) => o with
        {
            ProbeInterval = TimeSpan.FromMilliseconds(250),
            ProbeTimeout = TimeSpan.FromMilliseconds(100),
            IndirectChecks = 3,
            SuspicionMult = 4,
            RetransmitMult = 4,
            GossipInterval = TimeSpan.FromMilliseconds(50),
            PushPullInterval = TimeSpan.FromSeconds(5),
            TcpTimeout = TimeSpan.FromSeconds(1),
            DisableTcpPings = udpOnly,
            EnableCompression = false,
        }, seed: 1234);
        for (int i = 0; i < n; i++) await c.AddAsync($"l{i:00}");
        foreach (var m in c.Members.Skip(1)) await m.JoinAsync([c.Members[0].AdvertiseEndPoint]);
        var names = c.Members.Select(m => m.Name).ToList();
        await Eventually.True(() => InMemoryCluster.AllSee(c.Members, names), TimeSpan.FromSeconds(30), "converged before loss");

        c.Network.PacketLoss = 0.10;
        long sentBefore = c.Network.PacketsSent;
        await Task.Delay(run);
        long suspicions = c.Members.Sum(m => m.Stats.SuspicionsStarted);
        long falseDeaths = c.Members.Sum(m => m.Stats.DeclaredDead);
        long refutations = c.Members.Sum(m => m.Stats.Refutations);
        long probes = c.Members.Sum(m => m.Stats.Probes);
        long probesFailed = c.Members.Sum(m => m.Stats.ProbesFailed);
        long rescues = c.Members.Sum(m => m.Stats.TcpFallbackRescues);
        double lossSeen = (double)(c.Network.PacketsDropped) / Math.Max(1, c.Network.PacketsSent - sentBefore);

        // Kill one member (under the same loss) and time its detection by every other member.
        var victim = c.Members[^1];
        var observers = c.Members.Take(n - 1).ToList();
        var sw = Stopwatch.StartNew();
        await victim.DisposeAsync();
        var detectedAt = new Dictionary<string, TimeSpan>();
        await Eventually.True(() =>
        {
            foreach (var o in observers)
                if (!detectedAt.ContainsKey(o.Name) && o.GetMember(victim.Name)?.State == MemberState.Dead)
                    detectedAt[o.Name] = sw.Elapsed;
            return detectedAt.Count == observers.Count;
        }, TimeSpan.FromSeconds(60), "every member detects the killed one", pollMilliseconds: 20);
        var firstSuspectToDead = detectedAt.Values.Min();
        var all = detectedAt.Values.Max();
        long deathsAfter = observers.Sum(m => m.Stats.DeclaredDead) - falseDeaths;

        Report($"10% loss ({(udpOnly ? "UDP probes only" : "with TCP fallback")}), {n} members, probe {250} ms, {run.TotalSeconds:0} s: " +
               $"{probes} probes, {probesFailed} failed, {rescues} TCP rescues, {suspicions} suspicions, {refutations} refutations, {falseDeaths} false deaths (measured loss {lossSeen:P1}); " +
               $"killed member declared dead first after {firstSuspectToDead.TotalSeconds:0.00} s, by all {observers.Count} after {all.TotalSeconds:0.00} s");

        // No live member may have been declared dead, and only the victim afterwards (one declaration per observer at most).
        Assert.Equal(0, falseDeaths);
        Assert.True(deathsAfter <= observers.Count, $"{deathsAfter} dead declarations after the kill");
        Assert.All(observers, o => Assert.Equal(n - 1, o.NumMembers));
    }
}
