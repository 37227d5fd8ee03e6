using System.Diagnostics;
using UserOverlay.Testing.Common;

namespace UserOverlay.Membership.Tests;

public sealed class SerfFailureTests : SerfInteropBase
{
    [Theory]
    [InlineData("KILL")]
    [InlineData("STOP")]
    public async Task StoppedSerfAgent_IsSuspectedThenDeclaredDead(string signal)
    {
        var ip = SerfAgent.RandomLoopback();
        using var serf = SerfAgent.Start("serf1", ip);
        await using var uo = await Memberlist.CreateAsync(SerfCompat.Options("uo", ip));
        await uo.JoinAsync([serf.Bind.ToString()]);
        await Eventually.True(() => SerfSees(serf, "uo", "alive"), Wait, "joined");

        var sw = Stopwatch.StartNew();
        serf.Signal(signal);
        var (sawSuspect, elapsed) = await WaitSuspectThenDeadAsync(uo, "serf1", sw);
        Assert.True(sawSuspect, "went through suspect");
        // Local profile, 2 nodes: probe 1 s + suspicion 3 × 1 s, scaled by our health (≤ 8×).
        Assert.True(elapsed < TimeSpan.FromSeconds(30), $"detected in {elapsed}");

        if (signal == "STOP")
        {
            serf.Signal("CONT");
            await Eventually.True(() => Sees(uo, "serf1") == MemberState.Alive, Wait, "thawed serf refutes and is alive again");
            Assert.True(uo.GetMember("serf1")!.Incarnation > 1);
        }
    }

    [Fact]
    public async Task StoppedUserOverlayMember_IsFailedForSerf()
    {
        var ip = SerfAgent.RandomLoopback();
        using var serf = SerfAgent.Start("serf1", ip);
        var uo = await Memberlist.CreateAsync(SerfCompat.Options("uo", ip));
        await uo.JoinAsync([serf.Bind.ToString()]);
        await Eventually.True(() => SerfSees(serf, "uo", "alive"), Wait, "joined");
        await uo.DisposeAsync(); // stop without leaving
        await Eventually.True(() => SerfSees(serf, "uo", "failed"), Wait, "serf marks uo failed");
    }
}
