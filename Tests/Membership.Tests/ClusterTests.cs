using System.Diagnostics;
using System.Net;
using UserOverlay.Membership.Security;
using UserOverlay.Membership.Testing;
using UserOverlay.Membership.Transport;
using UserOverlay.Testing.Common;

namespace UserOverlay.Membership.Tests;

/// <summary>Small in-process clusters on <see cref="InMemoryNetwork"/>: join, failure detection, leave, refutation, encryption, messages.</summary>
public class ClusterTests
{
    private static readonly TimeSpan Wait = TimeSpan.FromSeconds(20);

    private static async Task<InMemoryCluster> StartAsync(int n, Func<string, MembershipOptions, MembershipOptions>? configure = null)
    {
        var c = new InMemoryCluster(configure);
        for (int i = 0; i < n; i++) await c.AddAsync($"n{i}");
        for (int i = 1; i < n; i++) await c.Members[i].JoinAsync([c.Members[0].AdvertiseEndPoint]);
        var names = c.Members.Select(m => m.Name).ToList();
        await Eventually.True(() => InMemoryCluster.AllSee(c.Members, names), Wait, $"{n} members converge");
        return c;
    }

    [Fact]
    public async Task Members_JoinThroughASeed_AndConverge()
    {
        await using var c = await StartAsync(4);
        foreach (var m in c.Members)
        {
            Assert.Equal(4, m.NumMembers);
            var self = m.LocalMember;
            Assert.Equal(MemberState.Alive, self.State);
            Assert.Equal(new ProtocolVersions(1, 5, 2, 0, 0, 0), self.Versions);
        }
        // Every member got one join event per member, itself included (events are delivered asynchronously).
        await Eventually.True(() => c.Events.Values.All(ev => c.Members.All(o => ev.Of("join", o.Name).Any())), Wait, "join events delivered");
        foreach (var (name, ev) in c.Events)
            foreach (var other in c.Members)
                Assert.Single(ev.Of("join", other.Name));
    }

    [Fact]
    public async Task GracefulLeave_IsSeenAsLeft_AndReaped()
    {
        await using var c = await StartAsync(3);
        var leaver = c["n2"];
        await leaver.LeaveAsync(TimeSpan.FromSeconds(5));
        await leaver.DisposeAsync();
        await Eventually.True(() => c.Members.Take(2).All(m => InMemoryCluster.StateOf(m, "n2") == MemberState.Left), Wait, "n2 left");
        await Eventually.True(() => c.Members.Take(2).All(m => c.Events[m.Name].Of("leave", "n2").Any()), Wait, "leave events delivered");
        Assert.All(c.Members.Take(2), m => Assert.DoesNotContain(c.Events[m.Name].Of("leave", "n2"), i => i.State == MemberState.Dead));
        Assert.All(c.Members.Take(2), m => Assert.Single(c.Events[m.Name].Of("leave", "n2")));
        // Reaped after GossipToTheDeadTime (5 s in the fast settings).
        await Eventually.True(() => c.Members.Take(2).All(m => m.GetMember("n2") is null), Wait, "n2 reaped");
    }

    [Fact]
    public async Task KilledMember_IsSuspectedThenDeclaredDead()
    {
        await using var c = await StartAsync(4);
        var victim = c["n3"];
        await victim.DisposeAsync();
        var observers = c.Members.Take(3).ToList();
        await Eventually.True(() => observers.All(m => InMemoryCluster.StateOf(m, "n3") == MemberState.Dead), Wait, "n3 dead everywhere");
        await Eventually.True(() => observers.All(m => c.Events[m.Name].Of("leave", "n3").Any()), Wait, "leave events delivered");
        foreach (var m in observers)
        {
            var leave = Assert.Single(c.Events[m.Name].Of("leave", "n3"));
            Assert.Equal(MemberState.Dead, leave.State);
        }
        // Nobody else was declared dead.
        Assert.All(observers, m => Assert.Equal(3, m.NumMembers));
    }

    [Fact]
    public async Task FrozenMember_IsDeclaredDead_ThenRefutesWithAHigherIncarnation()
    {
        await using var c = await StartAsync(3);
        c.Network.Freeze("n2");
        var observers = c.Members.Take(2).ToList();
        await Eventually.True(() => observers.All(m => InMemoryCluster.StateOf(m, "n2") == MemberState.Dead), Wait, "frozen n2 dead");
        uint deadInc = observers[0].GetMember("n2")!.Incarnation;
        c.Network.Freeze("n2", false);
        await Eventually.True(() => observers.All(m => InMemoryCluster.StateOf(m, "n2") == MemberState.Alive), Wait, "n2 back alive");
        Assert.True(observers[0].GetMember("n2")!.Incarnation > deadInc, "refutation raised the incarnation");
        Assert.True(c["n2"].LocalMember.Incarnation > deadInc);
    }

    [Fact]
    public async Task HealedPartition_MergesAgain_EvenAfterBothSidesReapedEachOther()
    {
        await using var c = await StartAsync(2, (_, o) => o with { DisableTcpPings = true, GossipToTheDeadTime = TimeSpan.FromSeconds(1) });
        c.Network.Partition("n0", "n1", streamsToo: true);
        await Eventually.True(() => c["n0"].GetMember("n1") is null && c["n1"].GetMember("n0") is null, Wait, "both sides declared the other dead and reaped it");
        c.Network.Partition("n0", "n1", cut: false);
        // Only the reconnect (serf's) brings them back: nobody gossips to or probes forgotten members.
        await Eventually.True(() => InMemoryCluster.StateOf(c["n0"], "n1") == MemberState.Alive && InMemoryCluster.StateOf(c["n1"], "n0") == MemberState.Alive, Wait, "merged again");
    }

    [Fact]
    public async Task IndirectProbe_KeepsAMemberAliveWhenOnlyTheDirectLinkIsCut()
    {
        await using var c = await StartAsync(3, (_, o) => o with { IndirectChecks = 1 });
        // n0 <-> n2 cut completely (UDP and TCP); n1 can still reach both.
        c.Network.Partition("n0", "n2", streamsToo: true);
        await Task.Delay(TimeSpan.FromSeconds(4)); // ~20 probe rounds
        Assert.Equal(MemberState.Alive, InMemoryCluster.StateOf(c["n0"], "n2"));
        Assert.Equal(MemberState.Alive, InMemoryCluster.StateOf(c["n2"], "n0"));
        Assert.Empty(c.Events["n0"].Of("leave", "n2"));
    }

    [Fact]
    public async Task TcpFallbackProbe_KeepsAMemberAliveWhenUdpIsCut()
    {
        await using var c = await StartAsync(2);
        c.Network.Partition("n0", "n1", streamsToo: false);
        await Task.Delay(TimeSpan.FromSeconds(3));
        Assert.Equal(MemberState.Alive, InMemoryCluster.StateOf(c["n0"], "n1"));
        Assert.Empty(c.Events["n0"].Of("leave", "n1"));
    }

    [Fact]
    public async Task Suspicion_WithoutIndirectOrTcpHelp_LeadsToDeath_AndLowersHealth()
    {
        await using var c = await StartAsync(2, (_, o) => o with { DisableTcpPings = true });
        c.Network.Partition("n0", "n1", streamsToo: true);
        await Eventually.True(() => InMemoryCluster.StateOf(c["n0"], "n1") == MemberState.Dead, Wait, "n1 dead for n0");
        // Failed probes with no one to nack raise the local health score (Lifeguard).
        Assert.True(c["n0"].HealthScore > 0 || c["n1"].HealthScore > 0);
    }

    [Fact]
    public async Task SharedKey_Joins_WrongKeyAndNoKey_DoNot()
    {
        var good = Keyring.FromBase64("AAECAwQFBgcICQoLDA0ODw==");
        var net = new InMemoryNetwork();
        async Task<Memberlist> Make(string name, Keyring? ring) =>
            await Memberlist.CreateAsync(InMemoryCluster.Fast(name) with { Transport = net.CreateTransport(name), Keyring = ring });

        await using var a = await Make("a", good);
        await using var b = await Make("b", Keyring.FromBase64("AAECAwQFBgcICQoLDA0ODw=="));
        await using var wrong = await Make("wrong", new Keyring(new byte[32]));
        await using var none = await Make("none", null);

        Assert.Equal(1, await b.JoinAsync([a.AdvertiseEndPoint]));
        await Eventually.True(() => a.NumMembers == 2 && b.NumMembers == 2, Wait, "a and b see each other");

        await Assert.ThrowsAsync<MembershipJoinException>(() => wrong.JoinAsync([a.AdvertiseEndPoint]));
        await Assert.ThrowsAsync<MembershipJoinException>(() => none.JoinAsync([a.AdvertiseEndPoint]));
        Assert.True(a.Drops[DropReason.DecryptionFailed] >= 1);
        Assert.True(a.Drops[DropReason.NotEncrypted] >= 1);

        // Datagrams: plaintext and wrongly-keyed pings are dropped and counted.
        await none.SendBestEffortAsync(a.AdvertiseEndPoint, new byte[] { 1, 2, 3 });
        await wrong.SendBestEffortAsync(a.AdvertiseEndPoint, new byte[] { 1, 2, 3 });
        await Eventually.True(() => a.Drops[DropReason.NotEncrypted] >= 2 && a.Drops[DropReason.DecryptionFailed] >= 2, Wait, "drops counted");
        Assert.Equal(2, a.NumMembers);
    }

    [Fact]
    public async Task KeyRotation_NewPrimaryKeepsTheClusterTogether()
    {
        var k1 = new byte[16]; k1[0] = 1;
        var k2 = new byte[16]; k2[0] = 2;
        var ringA = new Keyring(k1);
        var ringB = new Keyring(k1);
        await using var c = new InMemoryCluster((n, o) => o with { Keyring = n == "n0" ? ringA : ringB });
        var a = await c.AddAsync("n0");
        var b = await c.AddAsync("n1");
        await b.JoinAsync([a.AdvertiseEndPoint]);
        ringA.AddKey(k2); ringB.AddKey(k2);
        ringA.UseKey(k2);
        await b.PushPullAsync(a.AdvertiseEndPoint); // b still encrypts with k1, a with k2: both decrypt
        ringB.UseKey(k2);
        ringA.RemoveKey(k1); ringB.RemoveKey(k1);
        await b.PushPullAsync(a.AdvertiseEndPoint);
        await Task.Delay(1000);
        Assert.Equal(2, a.NumMembers);
        Assert.Equal(MemberState.Alive, InMemoryCluster.StateOf(a, "n1"));
    }

    [Fact]
    public async Task UserMessages_BestEffortReliableAndBroadcast_AreDelivered()
    {
        var queues = new Dictionary<string, TransmitLimitedQueue>();
        await using var c = await StartAsync(3, (n, o) =>
        {
            var q = new TransmitLimitedQueue(() => 3, 3);
            queues[n] = q;
            // With 3 members memberlist's own limit is RetransmitMult·ceil(log10 4); 4 makes both peers near-certain recipients.
            return o with { Broadcasts = q, RetransmitMult = 4 };
        });
        var a = c["n0"];
        await a.SendBestEffortAsync(c["n1"].AdvertiseEndPoint, "hello"u8.ToArray());
        await a.SendReliableAsync(c["n2"].AdvertiseEndPoint, new byte[100_000]);
        await Eventually.True(() => c.Delegates["n1"].Received.Any(m => m.AsSpan().SequenceEqual("hello"u8)), Wait, "best effort delivered");
        await Eventually.True(() => c.Delegates["n2"].Received.Any(m => m.Length == 100_000), Wait, "reliable delivered");

        bool finished = false;
        queues["n0"].Queue("gossip!"u8.ToArray(), "g", () => finished = true);
        await Eventually.True(() => c.Members.Skip(1).All(m => c.Delegates[m.Name].Received.Any(x => x.AsSpan().SequenceEqual("gossip!"u8))), Wait, "broadcast reached everyone");
        await Eventually.True(() => finished, Wait, "broadcast retired after its retransmit limit");

        a.QueueUserBroadcast("via memberlist queue"u8.ToArray());
        await Eventually.True(() => c.Members.Skip(1).All(m => c.Delegates[m.Name].Received.Any(x => x.AsSpan().SequenceEqual("via memberlist queue"u8))), Wait, "memberlist-queued user broadcast delivered");
    }

    private sealed class StateDelegate(string name) : IStateDelegate
    {
        public readonly System.Collections.Concurrent.ConcurrentBag<(string State, bool Join)> Merged = [];
        public byte[] GetLocalState(bool join) => System.Text.Encoding.UTF8.GetBytes("state of " + name);
        public void MergeRemoteState(ReadOnlySpan<byte> state, bool join) => Merged.Add((System.Text.Encoding.UTF8.GetString(state), join));
    }

    [Fact]
    public async Task PushPull_CarriesTheEmbeddersState_AtJoinAndPeriodically()
    {
        var states = new Dictionary<string, StateDelegate>();
        await using var c = await StartAsync(2, (n, o) => o with { State = states[n] = new StateDelegate(n), PushPullInterval = TimeSpan.FromMilliseconds(500) });
        Assert.Contains(("state of n0", true), states["n1"].Merged); // the joiner merged the answer before its join returned
        // The side that was joined answers first and merges after (as memberlist's handler does): wait for it.
        await Eventually.True(() => states["n0"].Merged.Contains(("state of n1", true)), Wait, "the joined side merged the joiner's state");
        await Eventually.True(() => states["n0"].Merged.Any(s => !s.Join) || states["n1"].Merged.Any(s => !s.Join), Wait, "periodic push/pull");
    }

    [Fact]
    public async Task MetaUpdate_IsGossiped_AsUpdateEvents()
    {
        await using var c = await StartAsync(3);
        c.Delegates["n1"].Meta = "vtep=192.0.2.1"u8.ToArray();
        await c["n1"].UpdateNodeMetaAsync(TimeSpan.FromSeconds(5));
        await Eventually.True(() => c.Members.All(m => m.GetMember("n1")!.Meta.Span.SequenceEqual("vtep=192.0.2.1"u8)), Wait, "meta converged");
        await Eventually.True(() => c.Events["n0"].Of("update", "n1").Any() && c.Events["n2"].Of("update", "n1").Any(), Wait, "update events");
        Assert.Throws<InvalidOperationException>(() => { c.Delegates["n1"].Meta = new byte[600]; c["n1"].UpdateNodeMetaAsync(TimeSpan.FromSeconds(1)).GetAwaiter().GetResult(); });
    }

    [Fact]
    public async Task Join_RetriesUntilASeedAnswers()
    {
        var net = new InMemoryNetwork();
        await using var a = await Memberlist.CreateAsync(InMemoryCluster.Fast("a") with { Transport = net.CreateTransport("a"), JoinMaxAttempts = 20, JoinRetryInterval = TimeSpan.FromMilliseconds(100) });
        var seedTransport = net.CreateTransport("seed");
        var seedEp = seedTransport.LocalEndPoint;
        await seedTransport.DisposeAsync(); // nothing listens there yet
        var join = a.JoinAsync([seedEp, new IPEndPoint(IPAddress.Loopback, 1)]);
        await Task.Delay(300);
        Assert.False(join.IsCompleted);
        // A member appears at another address; the join list does not contain it, so the join keeps failing...
        await Assert.ThrowsAsync<MembershipJoinException>(() => join);
        // ...and a seed that exists is joined at once.
        await using var b = await Memberlist.CreateAsync(InMemoryCluster.Fast("b") with { Transport = net.CreateTransport("b") });
        Assert.Equal(1, await a.JoinAsync([seedEp, b.AdvertiseEndPoint]));
    }

    [Theory]
    [InlineData("127.0.0.1", "127.0.0.1", 7946)]
    [InlineData("127.0.0.1:17946", "127.0.0.1", 17946)]
    [InlineData("[::1]:8000", "::1", 8000)]
    [InlineData("[::1]", "::1", 7946)]
    [InlineData("::1", "::1", 7946)]
    [InlineData("host.example:99", "host.example", 99)]
    public void SeedAddress_Splits(string seed, string host, int port)
    {
        Assert.Equal((host, port), SeedAddress.Split(seed));
    }

    [Fact]
    public void Presets_AreDeltas()
    {
        var lan = MembershipOptions.DefaultLan();
        var wan = MembershipOptions.DefaultWan();
        var local = MembershipOptions.DefaultLocal();
        Assert.Equal(TimeSpan.FromMilliseconds(500), lan.ProbeInterval);
        Assert.Equal(TimeSpan.FromMilliseconds(250), lan.ProbeTimeout);
        Assert.Equal(6, lan.SuspicionMult);
        Assert.Equal(3, lan.SuspicionMaxTimeoutMult);
        Assert.Equal(TimeSpan.FromMilliseconds(500), lan.RefusedProbeSuspicionTimeout);
        // LAN's suspicion floor: 6 · max(1, log10 n) · 500 ms = 3 s up to 10 members.
        Assert.Equal(TimeSpan.FromSeconds(3), Scaling.SuspicionTimeout(lan.SuspicionMult, 4, lan.ProbeInterval));
        Assert.Equal(TimeSpan.FromSeconds(5), wan.ProbeInterval);
        Assert.Equal(6, wan.SuspicionMult);
        Assert.Equal(6, wan.SuspicionMaxTimeoutMult);   // memberlist's WAN and Local keep memberlist's 6
        Assert.Equal(6, local.SuspicionMaxTimeoutMult);
        Assert.Equal(lan.RetransmitMult, wan.RetransmitMult);
        Assert.Equal(1, local.IndirectChecks);
        Assert.Equal(TimeSpan.FromMilliseconds(100), local.GossipInterval);
        Assert.Equal(TimeSpan.FromSeconds(4), Scaling.SuspicionTimeout(4, 10, TimeSpan.FromSeconds(1)));
        Assert.Equal(TimeSpan.FromSeconds(8), Scaling.SuspicionTimeout(4, 100, TimeSpan.FromSeconds(1)));
        Assert.Equal(4, TransmitLimitedQueue.RetransmitLimit(4, 2));
        Assert.Equal(12, TransmitLimitedQueue.RetransmitLimit(4, 200));
        Assert.Equal(TimeSpan.FromSeconds(30), Scaling.PushPullScale(TimeSpan.FromSeconds(30), 32));
        Assert.Equal(TimeSpan.FromSeconds(90), Scaling.PushPullScale(TimeSpan.FromSeconds(30), 128));
    }

    [Fact]
    public void SuspicionTimeout_ShrinksWithConfirmations()
    {
        var min = TimeSpan.FromSeconds(2);
        var max = TimeSpan.FromSeconds(30);
        Assert.Equal(max, Suspicion.RemainingTime(0, 3, TimeSpan.Zero, min, max));
        var one = Suspicion.RemainingTime(1, 3, TimeSpan.Zero, min, max);
        var two = Suspicion.RemainingTime(2, 3, TimeSpan.Zero, min, max);
        Assert.True(one < max && two < one);
        Assert.Equal(min, Suspicion.RemainingTime(3, 3, TimeSpan.Zero, min, max));
        Assert.Equal(min - TimeSpan.FromSeconds(1), Suspicion.RemainingTime(3, 3, TimeSpan.FromSeconds(1), min, max));
    }

    [Fact]
    public async Task Suspicion_EndWithin_FiresEarlyButNeverLater()
    {
        var fired = new TaskCompletionSource<long>(TaskCreationOptions.RunContinuationsAsynchronously);
        var sw = Stopwatch.StartNew();
        using var s = new Suspicion("a", 2, TimeSpan.FromSeconds(20), TimeSpan.FromSeconds(60), _ => fired.TrySetResult(sw.ElapsedMilliseconds));
        s.EndWithin(TimeSpan.FromMilliseconds(200));
        s.EndWithin(TimeSpan.FromSeconds(30)); // later than already set: ignored
        long at = await fired.Task.WaitAsync(TimeSpan.FromSeconds(10));
        Assert.InRange(at, 150, 10_000);
    }

    [Fact]
    public void TransmitLimitedQueue_RetiresAfterTheLimit_AndNamedMessagesReplace()
    {
        var q = new TransmitLimitedQueue(() => 9, 2); // limit 2·ceil(log10(10)) = 2
        int finished = 0;
        q.Queue([1], "a", () => finished++);
        q.Queue([2], "a", () => finished++); // replaces the first
        Assert.Equal(1, finished);
        q.Queue(new byte[10], null, () => finished++);
        var first = q.GetBroadcasts(2, 100);
        Assert.Equal(2, first.Count);
        Assert.Equal(10, first[0].Length); // larger first among equally-sent ones
        var small = q.GetBroadcasts(2, 5);  // only the 1-byte one fits
        Assert.Single(small);
        Assert.Equal(2, finished); // [2] reached its limit
        q.GetBroadcasts(2, 100);
        Assert.Equal(3, finished);
        Assert.Equal(0, q.Count);
    }

    [Fact]
    public async Task MalformedAndHostileDatagrams_AreDroppedAndCounted_AndTheMemberKeepsWorking()
    {
        await using var c = await StartAsync(2);
        var target = c["n0"];
        var attacker = c.Network.CreateTransport("attacker");
        var to = target.AdvertiseEndPoint;
        var rnd = new Random(7);
        var vectors = typeof(CaptureVectors).GetFields().Where(f => f.IsLiteral).Select(f => CaptureVectors.Bytes((string)f.GetRawConstantValue()!)).ToList();
        long before = target.Drops.Total;
        int sent = 0;
        foreach (var v in vectors)
        {
            for (int i = 0; i < 60; i++)
            {
                var b = (byte[])v.Clone();
                switch (i % 4)
                {
                    case 0: b = b[..rnd.Next(b.Length)]; break;                             // truncated
                    case 1: b[rnd.Next(b.Length)] = (byte)rnd.Next(256); break;            // flipped byte
                    case 2: b = [.. b, .. Enumerable.Range(0, rnd.Next(1, 50)).Select(_ => (byte)rnd.Next(256))]; break; // trailing junk
                    default: rnd.NextBytes(b); break;                                       // noise
                }
                await attacker.SendPacketAsync(b, to);
                sent++;
            }
        }
        // Specific hostile forms, each with its own reason.
        await attacker.SendPacketAsync(Array.Empty<byte>(), to);
        await attacker.SendPacketAsync(new byte[] { 0x0c, 1, 2, 3, 4, 0x00 }, to);                       // bad CRC
        await attacker.SendPacketAsync(new byte[] { 0x09, 0x82, 0xa4, (byte)'A', (byte)'l', (byte)'g', (byte)'o', 0x05, 0xa3, (byte)'B', (byte)'u', (byte)'f', 0xa0 }, to); // unknown algo
        await attacker.SendPacketAsync(new byte[] { 0x63 }, to);                                           // unknown type
        var nest = new byte[] { 0x00 };
        for (int i = 0; i < 10; i++) nest = Wire.Compound.Make([nest]);
        await attacker.SendPacketAsync(nest, to);                                                          // too deep
        await Eventually.True(() => target.Drops[DropReason.BadChecksum] >= 1 && target.Drops[DropReason.DecompressionFailed] >= 1
            && target.Drops[DropReason.UnknownMessageType] >= 1 && target.Drops[DropReason.TooDeep] >= 1 && target.Drops[DropReason.Truncated] >= 1
            && target.Drops[DropReason.Malformed] >= 1, Wait, "per-reason drops: " + target.Drops);

        // Hostile streams: garbage, a truncated push/pull and a huge declared size.
        foreach (var payload in new[] { new byte[] { 0x06, 0x83 }, new byte[] { 0x0a, 0x7f, 0xff, 0xff, 0xff }, Convert.FromHexString("0683a44a6f696ec3a54e6f646573ce7fffffffac5573657253746174654c656e00") })
        {
            await using var s = await attacker.DialAsync(to, TimeSpan.FromSeconds(1));
            await s.WriteAsync(payload);
            await s.FlushAsync();
            s.Dispose();
        }
        await Eventually.True(() => target.Drops[DropReason.Oversized] >= 1, Wait, "oversized stream counted: " + target.Drops);

        Assert.True(target.Drops.Total > before);
        // Still healthy and in the cluster.
        await Task.Delay(1000);
        Assert.Equal(MemberState.Alive, InMemoryCluster.StateOf(c["n1"], "n0"));
        Assert.Equal(MemberState.Alive, InMemoryCluster.StateOf(target, "n1"));
        Assert.Equal(MemberState.Alive, target.LocalMember.State);
        await target.SendReliableAsync(c["n1"].AdvertiseEndPoint, "still here"u8.ToArray());
        await Eventually.True(() => c.Delegates["n1"].Received.Any(m => m.AsSpan().SequenceEqual("still here"u8)), Wait, "member still works");
        await attacker.DisposeAsync();
    }

    [Fact]
    public async Task NetTransport_OnLoopback_JoinsAndDetectsFailure()
    {
        var opts = (string name, string ip) => InMemoryCluster.Fast(name) with { BindAddress = IPAddress.Parse(ip), BindPort = 0 };
        await using var a = await Memberlist.CreateAsync(opts("a", "127.0.0.1"));
        var b = await Memberlist.CreateAsync(opts("b", "127.0.0.1"));
        Assert.NotEqual(0, a.AdvertiseEndPoint.Port);
        Assert.Equal(1, await b.JoinAsync([$"127.0.0.1:{a.AdvertiseEndPoint.Port}"]));
        await Eventually.True(() => a.NumMembers == 2 && b.NumMembers == 2, Wait, "loopback join");
        await b.DisposeAsync();
        await Eventually.True(() => InMemoryCluster.StateOf(a, "b") == MemberState.Dead, Wait, "b dead");
    }
}
