using System.Diagnostics;
using System.Net;
using UserOverlay.Membership.Security;
using UserOverlay.Membership.Wire;
using UserOverlay.Testing.Common;

namespace UserOverlay.Membership.Tests;

/// <summary>
/// What serf expects of a member beyond memberlist, implemented on our public API the way an
/// embedder would: serf tags in the node meta (0xff + msgpack map), a delegate protocol range
/// serf accepts (2–5), and serf's leave intent (user message type 0) before a graceful leave,
/// without which serf records a bare memberlist leave as "failed".
/// </summary>
public sealed class SerfCompat : IMembershipDelegate, IBroadcastSource
{
    private readonly string _name;
    private long _ltime;

    public SerfCompat(string name)
    {
        _name = name;
        Queue = new TransmitLimitedQueue(() => 3, 4);
    }

    public TransmitLimitedQueue Queue { get; }

    public static MembershipOptions Options(string name, IPAddress ip, Keyring? key = null)
    {
        var compat = new SerfCompat(name);
        return MembershipOptions.DefaultLocal() with
        {
            Name = name,
            BindAddress = ip,
            BindPort = SerfAgent.FreePort(ip),
            Keyring = key,
            DelegateProtocolMin = 2,
            DelegateProtocolMax = 5,
            DelegateProtocolVersion = 4,
            Delegate = compat,
            Broadcasts = compat,
        };
    }

    public int WriteNodeMeta(Span<byte> destination)
    {
        var w = new MsgPackWriter();
        w.WriteByte(0xff);          // serf's tag magic
        w.WriteMapHeader(1);
        w.WriteString("role");
        w.WriteString("useroverlay");
        w.WrittenSpan.CopyTo(destination);
        return w.Length;
    }

    public void OnUserMessage(ReadOnlySpan<byte> message)
    {
        // serf join (1) and leave (0) intents carry {LTime, Node}: witness the Lamport time.
        if (message.Length < 2 || message[0] > 1) return;
        try
        {
            var r = new MsgPackReader(message[1..]);
            int n = r.ReadMapHeader();
            for (int i = 0; i < n; i++)
            {
                if (r.ReadString() == "LTime") { long t = r.ReadInt64(); InterlockedMax(t); }
                else r.Skip();
            }
        }
        catch (MsgPackException) { }
    }

    private void InterlockedMax(long t)
    {
        long cur;
        while ((cur = Interlocked.Read(ref _ltime)) < t && Interlocked.CompareExchange(ref _ltime, t, cur) != cur) { }
    }

    public IReadOnlyList<byte[]> GetBroadcasts(int overhead, int limit) => Queue.GetBroadcasts(overhead, limit);

    /// <summary>Queues serf's leave intent and completes once it has been gossiped.</summary>
    public Task LeaveIntentAsync()
    {
        var done = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var w = new MsgPackWriter();
        w.WriteByte(0); // serf messageLeaveType
        w.WriteMapHeader(3);
        w.WriteString("LTime"); w.WriteUInt((ulong)Interlocked.Increment(ref _ltime));
        w.WriteString("Node"); w.WriteString(_name);
        w.WriteString("Prune"); w.WriteBool(false);
        Queue.Queue(w.ToArray(), "leave", () => done.TrySetResult());
        return done.Task;
    }
}

/// <summary>Base: one UserOverlay member next to serf agents on private loopback addresses.</summary>
public abstract class SerfInteropBase
{
    protected static readonly TimeSpan Wait = TimeSpan.FromSeconds(30);
    protected const string Key = "AAECAwQFBgcICQoLDA0ODw==";

    protected static bool SerfSees(SerfAgent agent, string node, string status) => agent.StatusOf(node) == status;

    protected static MemberState? Sees(Memberlist m, string node) => m.GetMember(node)?.State;

    /// <summary>Polls until <paramref name="node"/> is dead in <paramref name="m"/>, recording whether it was seen suspect first; returns the time from <paramref name="since"/>.</summary>
    protected static async Task<(bool SawSuspect, TimeSpan Elapsed)> WaitSuspectThenDeadAsync(Memberlist m, string node, Stopwatch since)
    {
        bool sawSuspect = false;
        await Eventually.True(() =>
        {
            var s = Sees(m, node);
            if (s == MemberState.Suspect) sawSuspect = true;
            return s == MemberState.Dead;
        }, Wait, $"{node} dead", pollMilliseconds: 20);
        return (sawSuspect, since.Elapsed);
    }
}

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
