using UserOverlay.Testing.Common;

namespace UserOverlay.Membership.Tests;

public sealed class SerfLeaveTests : SerfInteropBase
{
    [Fact]
    public async Task GracefulLeave_ShowsAsLeft_OnBothSides()
    {
        var ip = SerfAgent.RandomLoopback();
        using var serf1 = SerfAgent.Start("serf1", ip);
        using var serf2 = SerfAgent.Start("serf2", ip);
        var opts = SerfCompat.Options("uo", ip);
        var uo = await Memberlist.CreateAsync(opts);
        try
        {
            await uo.JoinAsync([serf1.Bind.ToString(), serf2.Bind.ToString()]);
            await Eventually.True(() => SerfSees(serf1, "uo", "alive") && SerfSees(serf2, "uo", "alive") && Sees(uo, "serf2") == MemberState.Alive, Wait, "joined");

            // serf leaves: we record Left (dead message with From == Node).
            serf2.Leave();
            await Eventually.True(() => Sees(uo, "serf2") == MemberState.Left, Wait, "serf2 left for uo");

            // We leave the serf way (leave intent, then memberlist's leave): serf records "left".
            await ((SerfCompat)opts.Delegate!).LeaveIntentAsync().WaitAsync(TimeSpan.FromSeconds(10));
            await uo.LeaveAsync(TimeSpan.FromSeconds(10));
            await Eventually.True(() => SerfSees(serf1, "uo", "left"), Wait, "serf1 lists uo as left");
        }
        finally
        {
            await uo.DisposeAsync();
        }
    }
}
