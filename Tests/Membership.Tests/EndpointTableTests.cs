using System.Net;
using UserOverlay.Membership.Table;
using UserOverlay.Membership.Testing;
using UserOverlay.Testing.Common;

namespace UserOverlay.Membership.Tests;

public class EndpointTableTests
{
    private static readonly TimeSpan Wait = TimeSpan.FromSeconds(20);

    private sealed class Hosts : IAsyncDisposable
    {
        public readonly InMemoryNetwork Net = new();
        public readonly List<EndpointTable> Tables = [];
        public readonly Dictionary<string, TableRecorder> Rec = [];

        public async Task<EndpointTable> AddAsync(string name, int i, Func<MembershipOptions, MembershipOptions>? tweak = null, TimeSpan? tombstoneTtl = null)
        {
            var rec = new TableRecorder();
            var mo = InMemoryCluster.Fast(name) with { Transport = Net.CreateTransport(name) };
            if (tweak is not null) mo = tweak(mo);
            var t = await EndpointTable.StartAsync(new EndpointTableOptions
            {
                Membership = mo,
                VtepAddress = IPAddress.Parse($"192.0.2.{i}"),
                DataPort = 4789,
                Observer = rec,
                TombstoneTtl = tombstoneTtl ?? TimeSpan.FromMinutes(30),
                ReapInterval = TimeSpan.FromMilliseconds(200),
            });
            Tables.Add(t);
            Rec[name] = rec;
            return t;
        }

        public EndpointTable this[string name] => Tables.First(t => t.NodeName == name);

        public async ValueTask DisposeAsync() => await Task.WhenAll(Tables.Select(t => t.DisposeAsync().AsTask()));
    }

    private static async Task<Hosts> StartAsync(int n, Func<MembershipOptions, MembershipOptions>? tweak = null, TimeSpan? ttl = null)
    {
        var h = new Hosts();
        for (int i = 1; i <= n; i++) await h.AddAsync($"h{i}", i, tweak, ttl);
        foreach (var t in h.Tables.Skip(1)) await t.JoinAsync([h.Tables[0].Memberlist.AdvertiseEndPoint]);
        await Eventually.True(() => h.Tables.All(t => t.Memberlist.NumMembers == n), Wait, "hosts converge");
        return h;
    }

    private const ulong MacA = 0x02_42_c6_12_00_01, MacB = 0x02_42_c6_12_00_02, MacC = 0x02_42_c6_12_00_03;

    [Fact]
    public async Task PublishedEndpoints_ReachEveryHostInTheNetwork_WithVtepAndFloodList()
    {
        await using var h = await StartAsync(3);
        h["h1"].PublishEndpoint("net1", MacA, IPAddress.Parse("198.18.0.2"));
        h["h2"].PublishEndpoint("net1", MacB, IPAddress.Parse("198.18.0.3"));
        h["h3"].JoinNetwork("net1");

        await Eventually.True(() => h.Tables.All(t => t.GetEndpoints("net1").Count == 2), Wait, "every host has both records");
        // Observers (the router's FDB) get only remote endpoints, with the owner's VTEP.
        await Eventually.True(() => h.Rec["h3"].Fdb.Count == 2 && h.Rec["h1"].Fdb.Count == 1 && h.Rec["h2"].Fdb.Count == 1, Wait, "FDBs built from events");
        var a = h.Rec["h3"].Fdb[("net1", MacA)];
        Assert.Equal(IPAddress.Parse("192.0.2.1"), a.Vtep);
        Assert.Equal(IPAddress.Parse("198.18.0.2"), a.Ip);
        Assert.Equal("h1", a.OwnerNode);
        Assert.Equal("02:42:C6:12:00:01", string.Join(':', a.MacAddress.GetAddressBytes().Select(b => b.ToString("X2"))));

        // Flood lists: the other hosts of the network, VTEP and data port from their node meta.
        await Eventually.True(() => h.Rec["h1"].PeerNames("net1").SequenceEqual(["h2", "h3"]) && h.Rec["h3"].PeerNames("net1").SequenceEqual(["h1", "h2"]), Wait, "flood lists");
        var peer = h.Rec["h1"].Peers["net1"].Single(p => p.NodeName == "h2");
        Assert.Equal(IPAddress.Parse("192.0.2.2"), peer.Vtep);
        Assert.Equal(4789, peer.DataPort);
        Assert.Equal(h["h1"].GetNetworkPeers("net1"), h.Rec["h1"].Peers["net1"]);

        // Node meta carries the VTEP for everyone to see.
        var overlay = h["h1"].GetOverlayMembers();
        Assert.Equal(3, overlay.Count);
        Assert.Contains(overlay, x => x.Member.Name == "h3" && x.Meta.VtepAddress.Equals(IPAddress.Parse("192.0.2.3")));
    }

    [Fact]
    public async Task JoinStorm_EveryHostLearnsEveryRecord_WithoutWaitingForPushPull()
    {
        // Six hosts publish, then all join the seed at the same moment; push/pull is far away (60 s),
        // so every record must arrive by gossip — including those gossiped before the receiver was
        // known to be in the network.
        await using var h = new Hosts();
        Func<MembershipOptions, MembershipOptions> slowPushPull = o => o with { PushPullInterval = TimeSpan.FromSeconds(60), RetransmitMult = 4 };
        for (int i = 1; i <= 6; i++)
        {
            var t = await h.AddAsync($"h{i}", i, slowPushPull);
            t.PublishEndpoint("net1", 0x02_42_c6_12_01_00UL + (ulong)i, IPAddress.Parse($"198.18.1.{i}"));
        }
        await Task.WhenAll(h.Tables.Skip(1).Select(t => t.JoinAsync([h.Tables[0].Memberlist.AdvertiseEndPoint])));
        try
        {
            await Eventually.True(() => h.Tables.All(t => t.GetEndpoints("net1").Count == 6), TimeSpan.FromSeconds(15),
                "every host has all six records well before the next push/pull");
        }
        catch (Exception e)
        {
            throw new Xunit.Sdk.XunitException(e.Message + "\n" + string.Join("\n", h.Tables.Select(t =>
                $"{t.NodeName}: members {t.Memberlist.NumMembers}, records {string.Join(",", t.GetEndpoints("net1").Select(r => r.OwnerNode).Order())}, peers {string.Join(",", t.GetNetworkPeers("net1").Select(p => p.NodeName).Order())}")));
        }
        await Eventually.True(() => h.Rec.Values.All(r => r.Fdb.Count == 5), TimeSpan.FromSeconds(5), "every FDB has the five remote endpoints");
    }

    [Fact]
    public async Task UpdateAndRemove_AreReplicated_AndTombstonesReaped()
    {
        await using var h = await StartAsync(2, ttl: TimeSpan.FromSeconds(2));
        h["h2"].JoinNetwork("net1");
        h["h1"].PublishEndpoint("net1", MacA, IPAddress.Parse("198.18.0.2"));
        await Eventually.True(() => h.Rec["h2"].Fdb.ContainsKey(("net1", MacA)), Wait, "added");
        h["h1"].PublishEndpoint("net1", MacA, IPAddress.Parse("198.18.0.9"));
        await Eventually.True(() => h.Rec["h2"].Fdb.TryGetValue(("net1", MacA), out var r) && r.Ip!.Equals(IPAddress.Parse("198.18.0.9")), Wait, "updated");
        Assert.Contains(h.Rec["h2"].Changes, c => c.Kind == EndpointChangeKind.Updated && c.Previous!.Ip!.Equals(IPAddress.Parse("198.18.0.2")));

        Assert.True(h["h1"].RemoveEndpoint("net1", MacA));
        Assert.False(h["h2"].RemoveEndpoint("net1", MacA)); // not the owner
        await Eventually.True(() => !h.Rec["h2"].Fdb.ContainsKey(("net1", MacA)) && h["h2"].Lookup("net1", MacA) is null, Wait, "removed");
        Assert.True(h["h2"].TombstoneCount >= 1);
        await Eventually.True(() => h["h1"].TombstoneCount == 0 && h["h2"].TombstoneCount == 0, Wait, "tombstones reaped after the TTL");
    }

    [Fact]
    public async Task FailedOrLeavingHost_HasItsRecordsRemoved_AndLeavesTheFloodList()
    {
        await using var h = await StartAsync(3);
        h["h1"].JoinNetwork("net1");
        h["h2"].PublishEndpoint("net1", MacB, null);
        h["h3"].PublishEndpoint("net1", MacC, null);
        await Eventually.True(() => h.Rec["h1"].Fdb.Count == 2 && h.Rec["h1"].PeerNames("net1").Count == 2, Wait, "h1 sees both");

        // h2 fails (killed): its record goes, it leaves h1's flood list.
        await h["h2"].DisposeAsync();
        await Eventually.True(() => !h.Rec["h1"].Fdb.ContainsKey(("net1", MacB)) && h.Rec["h1"].PeerNames("net1").SequenceEqual(["h3"]), Wait, "failed host removed");
        // h3 leaves gracefully.
        await h["h3"].LeaveAsync(TimeSpan.FromSeconds(5));
        await h["h3"].DisposeAsync();
        await Eventually.True(() => h.Rec["h1"].Fdb.IsEmpty && h.Rec["h1"].PeerNames("net1").Count == 0, Wait, "left host removed");
        Assert.Empty(h["h1"].GetEndpoints("net1"));
    }

    [Fact]
    public async Task NewHost_LearnsEverythingThroughPushPull()
    {
        // Gossip is long over when the new host arrives: only the join's push/pull can teach it.
        await using var h = await StartAsync(2, o => o with { PushPullInterval = TimeSpan.FromMinutes(5) });
        for (ulong i = 0; i < 300; i++) h["h1"].PublishEndpoint("net1", 0x02_00_00_00_10_00 + i, IPAddress.Parse($"198.18.{i / 200}.{i % 200 + 1}"));
        h["h2"].JoinNetwork("net1");
        h["h1"].PublishEndpoint("net2", MacB, null); // a network the late host does not join
        await Eventually.True(() => h["h2"].GetEndpoints("net1").Count == 300, Wait, "h2 has them");
        await Task.Delay(1500); // retransmits exhausted
        var late = await h.AddAsync("h9", 9, o => o with { PushPullInterval = TimeSpan.FromMinutes(5) });
        late.JoinNetwork("net1");
        await late.JoinAsync([h["h1"].Memberlist.AdvertiseEndPoint]);
        await Eventually.True(() => h.Rec["h9"].Fdb.Count == 300, Wait, "late host has all 300 records of net1 as events");
        Assert.DoesNotContain(h.Rec["h9"].Changes, c => c.Record.NetworkId == "net2");
        await Eventually.True(() => h.Rec["h9"].PeerNames("net1").SequenceEqual(["h1", "h2"]), Wait, "flood list of the late host");
        await Eventually.True(() => h.Rec["h1"].PeerNames("net1").SequenceEqual(["h2", "h9"]), Wait, "h1 floods to the late host");
    }

    [Fact]
    public async Task EndpointGossip_GoesOnlyToHostsInTheNetwork()
    {
        await using var h = await StartAsync(3, o => o with { PushPullInterval = TimeSpan.FromMinutes(5) });
        h["h2"].JoinNetwork("net1");
        await Eventually.True(() => h["h1"].Memberlist.Members.Count == 3 && h.Tables.All(t => t.GetNetworkPeers("net1").Count == (t.NodeName == "h2" ? 0 : 1)), Wait, "attachment known");
        h["h1"].PublishEndpoint("net1", MacA, null);
        await Eventually.True(() => h["h2"].Lookup("net1", MacA) is not null, Wait, "member of net1 got it by gossip");
        await Task.Delay(1000);
        Assert.Null(h["h3"].Lookup("net1", MacA)); // not in net1: no gossip (push/pull is 5 min away)
    }

    [Fact]
    public async Task ReturningHost_IsResynchronised()
    {
        await using var h = await StartAsync(2);
        h["h1"].JoinNetwork("net1");
        h["h2"].PublishEndpoint("net1", MacB, null);
        await Eventually.True(() => h.Rec["h1"].Fdb.ContainsKey(("net1", MacB)), Wait, "added");
        h.Net.Freeze("h2");
        await Eventually.True(() => !h.Rec["h1"].Fdb.ContainsKey(("net1", MacB)), Wait, "dead host's record removed");
        h.Net.Freeze("h2", false);
        await Eventually.True(() => h.Rec["h1"].Fdb.ContainsKey(("net1", MacB)) && h.Rec["h1"].PeerNames("net1").SequenceEqual(["h2"]), Wait, "record and flood-list entry back after refutation");
    }

    [Fact]
    public async Task ConcurrentClaimsOfOneMac_ConvergeToTheLatestLamportVersion()
    {
        await using var h = await StartAsync(3);
        h["h3"].JoinNetwork("net1");
        h["h1"].PublishEndpoint("net1", MacA, IPAddress.Parse("198.18.0.2"));
        await Eventually.True(() => h["h2"].Lookup("net1", MacA) is not null, Wait, "h2 knows h1's claim"); // h2's clock now ≥ h1's
        h["h2"].PublishEndpoint("net1", MacA, IPAddress.Parse("198.18.0.2")); // the endpoint moved to h2
        await Eventually.True(() => h.Tables.All(t => t.Lookup("net1", MacA)?.OwnerNode == "h2"), Wait, "everyone agrees on the newer owner");
        await Eventually.True(() => h.Rec["h3"].Fdb[("net1", MacA)].Vtep.Equals(IPAddress.Parse("192.0.2.2")), Wait, "h3's FDB points at h2's VTEP");
        Assert.Contains(h.Rec["h3"].Changes, c => c.Kind == EndpointChangeKind.Updated && c.Previous!.OwnerNode == "h1");
    }

    [Fact]
    public async Task LeaveNetwork_DeletesOwnRecords_AndClearsTheFloodList()
    {
        await using var h = await StartAsync(2);
        h["h1"].PublishEndpoint("net1", MacA, null);
        h["h2"].PublishEndpoint("net1", MacB, null);
        await Eventually.True(() => h.Rec["h1"].Fdb.Count == 1 && h.Rec["h2"].Fdb.Count == 1, Wait, "both sides");
        h["h2"].LeaveNetwork("net1");
        Assert.Empty(h["h2"].Networks);
        await Eventually.True(() => h.Rec["h1"].Fdb.IsEmpty && h.Rec["h1"].PeerNames("net1").Count == 0, Wait, "h2's endpoint and attachment gone for h1");
        await Eventually.True(() => h.Rec["h2"].Fdb.IsEmpty && h.Rec["h2"].PeerNames("net1").Count == 0, Wait, "h2 reports removals locally");
        Assert.Null(h["h1"].Lookup("net1", MacB));
        Assert.Equal(["net1"], h["h1"].Networks);
    }

    [Fact]
    public void OverlayNodeMeta_RoundTrips_AndRejectsOthers()
    {
        var m = new OverlayNodeMeta(IPAddress.Parse("192.0.2.7"), 4790);
        var b = m.ToBytes();
        Assert.True(b.Length < 64);
        Assert.True(OverlayNodeMeta.TryParse(b, out var back));
        Assert.Equal(m, back);
        Assert.False(OverlayNodeMeta.TryParse(Convert.FromHexString("ff81a4726f6c65a3776562"), out _)); // serf tags
        Assert.False(OverlayNodeMeta.TryParse(b[..^2], out _));
        Assert.Equal(0x0242c6120001UL, EndpointRecord.ParseMac("02:42:c6:12:00:01"));
    }

    [Fact]
    public async Task MalformedTableMessages_AreCounted_NotApplied()
    {
        await using var h = await StartAsync(2);
        var t1 = h["h1"];
        await h["h2"].Memberlist.SendBestEffortAsync(t1.Memberlist.AdvertiseEndPoint, new byte[] { 0xD7, 0x91, 0x92, 0xa1, (byte)'E', 0x81 });
        await h["h2"].Memberlist.SendReliableAsync(t1.Memberlist.AdvertiseEndPoint, new byte[] { 0xD7, 0xff, 0x00 });
        await Eventually.True(() => t1.MalformedMessages >= 2, Wait, "malformed table messages counted");
        Assert.Empty(t1.GetEndpoints("net1"));
    }
}
