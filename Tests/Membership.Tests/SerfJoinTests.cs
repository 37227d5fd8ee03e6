using UserOverlay.Membership.Security;
using UserOverlay.Membership.Wire;
using UserOverlay.Testing.Common;

namespace UserOverlay.Membership.Tests;

public sealed class SerfJoinTests : SerfInteropBase
{
    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task SerfAndUserOverlay_JoinEachOther_InBothDirections(bool encrypted)
    {
        var ip = SerfAgent.RandomLoopback();
        string? key = encrypted ? Key : null;
        using var serf1 = SerfAgent.Start("serf1", ip, key);
        await using var uo = await Memberlist.CreateAsync(SerfCompat.Options("uo", ip, key is null ? null : Keyring.FromBase64(key)));

        // We join serf.
        Assert.Equal(1, await uo.JoinAsync([serf1.Bind.ToString()]));
        // serf joins us.
        using var serf2 = SerfAgent.Start("serf2", ip, key, join: uo.AdvertiseEndPoint.ToString());

        await Eventually.True(() => Sees(uo, "serf1") == MemberState.Alive && Sees(uo, "serf2") == MemberState.Alive, Wait, "UserOverlay sees both serf agents alive");
        await Eventually.True(() => SerfSees(serf1, "uo", "alive") && SerfSees(serf2, "uo", "alive"), Wait, "serf agents list uo alive");
        await Eventually.True(() => SerfSees(serf1, "serf2", "alive") && SerfSees(serf2, "serf1", "alive"), Wait, "serf agents see each other (via us or directly)");

        var seen = serf1.Members().Single(m => m.Name == "uo");
        Assert.Equal("useroverlay", seen.Tags["role"]);
        Assert.Equal($"{uo.AdvertiseEndPoint}", seen.Addr);
        Assert.Equal(4, seen.ProtocolVersion); // our delegate (serf) protocol, from Vsn

        var s1 = uo.GetMember("serf1")!;
        Assert.Equal(ProtocolConstants.ProtocolVersionCurrent, s1.Versions.ProtocolCurrent);
        Assert.Equal(5, s1.Versions.ProtocolMax);
        Assert.Equal(0xff, s1.Meta.Span[0]); // serf tags
        Assert.Equal(0, uo.Drops[DropReason.DecryptionFailed] + uo.Drops[DropReason.NotEncrypted] + uo.Drops[DropReason.Malformed]);

        // Let a few probe/gossip rounds and a push/pull pass; serf must not have complained about anything we sent.
        await uo.PushPullAsync(serf1.Bind);
        await Task.Delay(2500);
        foreach (var agent in new[] { serf1, serf2 })
        {
            var errors = agent.Log.Split('\n').Where(l => l.Contains("[ERR]") || l.Contains("[WARN]")).ToList();
            Assert.True(errors.Count == 0, $"{agent.Name} logged:\n{string.Join('\n', errors)}");
        }
        Assert.Equal(0, uo.Drops.Total - uo.Drops[DropReason.UnexpectedAck]);
    }

    [Fact]
    public async Task WrongKey_DoesNotJoin_EitherWay()
    {
        var ip = SerfAgent.RandomLoopback();
        using var serf = SerfAgent.Start("serf1", ip, Key);
        await using var uo = await Memberlist.CreateAsync(SerfCompat.Options("uo", ip, new Keyring(new byte[32])));
        await Assert.ThrowsAsync<MembershipJoinException>(() => uo.JoinAsync([serf.Bind.ToString()]));
        Assert.False(serf.Join(uo.AdvertiseEndPoint));
        Assert.True(uo.Drops[DropReason.DecryptionFailed] >= 1);
        await Task.Delay(1000);
        Assert.Null(serf.StatusOf("uo"));
        Assert.Null(uo.GetMember("serf1"));

        // And without any key against a keyed serf.
        await using var plain = await Memberlist.CreateAsync(SerfCompat.Options("plain", ip));
        await Assert.ThrowsAsync<MembershipJoinException>(() => plain.JoinAsync([serf.Bind.ToString()]));
        Assert.Null(serf.StatusOf("plain"));
    }
}
