using System.Diagnostics;
using System.Net;
using UserOverlay.Router.Forwarding;
using UserOverlay.Router.Testing;
using UserOverlay.Testing.Common;
using static UserOverlay.Router.Tests.InMemoryHosts;

namespace UserOverlay.Router.Tests;

/// <summary>
/// Static mode: a learned FDB entry whose VTEP went silent while frames are sent to it is removed after
/// <see cref="RouterOptions.UnansweredAging"/> (default 5 s), not after the 300 s aging, and the next frames flood so the
/// MAC is learned where it lives now. First the sweep's rule on a <see cref="ForwardingState"/> with chosen clocks, then
/// whole routers over the in-memory doubles with the default options.
/// </summary>
public class SilentVtepTests : IDisposable
{
    private const long W = 5000; // the default window, ms
    private static readonly TimeSpan Wait = TimeSpan.FromSeconds(5);
    private readonly InMemoryHosts _hosts = new();
    public void Dispose() => _hosts.Dispose();

    private static MacAddress MacOf(string ip) => MacAddress.FromIPv4(IPAddress.Parse(ip));
    private static readonly MacAddress A1 = MacOf("198.18.0.11");
    private static readonly MacAddress M = MacOf("198.18.0.50");

    // ---- The rule, with chosen clocks ----

    private sealed class Table
    {
        public readonly ForwardingState State;
        public readonly NetworkState Net;
        public readonly PeerState Peer;
        public readonly long T0 = 1_000_000;

        public Table(TimeSpan? unanswered = null)
        {
            State = new ForwardingState(1, learning: true, Constants.DefaultFdbAging, unanswered ?? Constants.DefaultUnansweredAging);
            Net = new NetworkState(Blue, 1450, 1);
            State.Networks.Set(Blue.Vni, Net);
            Peer = new PeerState(Vtep(2), lastHeard: T0);
            State.Peers.Set(Vtep(2).Address, Peer);
        }

        public FdbEntry Add(ulong mac, EntrySource source = EntrySource.Learned, VtepEndpoint? vtep = null)
        {
            var e = new FdbEntry(mac, source, null, vtep ?? Vtep(2), T0);
            Net.Fdb.Set(mac, e);
            return e;
        }

        public bool Has(ulong mac) => Net.Fdb.TryGet(mac, out _);
    }

    [Fact]
    public void An_entry_sent_to_without_answer_goes_once_the_window_has_passed_since_the_first_unanswered_send()
    {
        var t = new Table();
        t.Add(M.Value);
        t.Net.LearnedCount = 1;
        var entry = t.Net.Fdb.TryGet(M.Value, out var e) ? e : throw new InvalidOperationException();
        entry.Sent(t.T0 + 1000);
        entry.Sent(t.T0 + 3000); // later sends do not move the stamp: the answer is owed since the first
        Assert.Equal((0, 0), t.State.Sweep(t.T0 + 1000 + W - 1));
        Assert.True(t.Has(M.Value));

        var removed = new List<(ulong, VtepEndpoint)>();
        Assert.Equal((0, 1), t.State.Sweep(t.T0 + 1000 + W, (net, mac, vtep) => removed.Add((mac, vtep))));
        Assert.False(t.Has(M.Value));
        Assert.Equal([(M.Value, Vtep(2))], removed);
        Assert.Equal(1, t.Net.UnansweredRemoved);
        Assert.Equal(0, t.Net.LearnedCount);
    }

    [Fact]
    public void An_answer_from_the_MAC_even_within_the_stamp_granularity_keeps_the_entry()
    {
        var t = new Table();
        var e = t.Add(M.Value);
        e.Sent(t.T0 + 1000);
        e.Seen(t.T0 + 1010); // 1010 ms after the last stamp would be throttled, but a send is waiting: written at once
        Assert.Equal((0, 0), t.State.Sweep(t.T0 + 60_000));
        Assert.True(t.Has(M.Value));

        // A later send after the answer starts a new wait (once the throttle allows a new stamp).
        e.Sent(t.T0 + 1050); // within 100 ms of the previous stamp: not written
        Assert.Equal((0, 0), t.State.Sweep(t.T0 + 60_000));
        e.Sent(t.T0 + 2000);
        Assert.Equal((0, 1), t.State.Sweep(t.T0 + 2000 + W));
    }

    [Fact]
    public void Anything_heard_from_the_VTEP_keeps_its_entries_and_silence_after_it_removes_them()
    {
        var t = new Table();
        var e = t.Add(M.Value);
        e.Sent(t.T0 + 1000);
        t.Peer.Heard(t.T0 + 5500); // another MAC behind the same VTEP spoke: the VTEP is alive
        Assert.Equal((0, 0), t.State.Sweep(t.T0 + 6000));
        Assert.True(t.Has(M.Value));
        Assert.Equal((0, 0), t.State.Sweep(t.T0 + 5500 + W - 1));
        Assert.Equal((0, 1), t.State.Sweep(t.T0 + 5500 + W));
    }

    [Fact]
    public void Entries_nobody_sends_to_only_age_and_a_peer_gone_from_the_table_counts_as_silent()
    {
        var t = new Table();
        t.Add(M.Value);
        Assert.Equal((0, 0), t.State.Sweep(t.T0 + 200_000)); // silent VTEP, but nothing goes into the void
        Assert.Equal((1, 0), t.State.Sweep(t.T0 + 300_001)); // the ordinary aging

        var gone = t.Add(A1.Value, vtep: Vtep(9)); // a VTEP no longer among the peers
        gone.Sent(t.T0 + 1000);
        Assert.Equal((0, 1), t.State.Sweep(t.T0 + 1000 + W));
    }

    [Fact]
    public void Static_gossip_and_local_entries_never_go_this_way_and_zero_turns_it_off()
    {
        var t = new Table();
        foreach (var (mac, source) in new[] { (1UL, EntrySource.Static), (2UL, EntrySource.Gossip), (3UL, EntrySource.Local) })
            t.Add(mac, source).Sent(t.T0 + 1000);
        Assert.Equal((0, 0), t.State.Sweep(t.T0 + 400_000));
        Assert.True(t.Has(1) && t.Has(2) && t.Has(3));

        var off = new Table(TimeSpan.Zero);
        off.Add(M.Value).Sent(off.T0 + 1000);
        Assert.Equal((0, 0), off.State.Sweep(off.T0 + 200_000));
        Assert.True(off.Has(M.Value));
    }

    [Fact]
    public void The_housekeeping_runs_often_enough_for_the_window()
    {
        var o = new RouterOptions { Underlay = Vtep(1) };
        Assert.Equal(TimeSpan.FromSeconds(1), OverlayRouter.HousekeepingPeriod(o)); // defaults: 300 s aging, 5 s window
        Assert.Equal(TimeSpan.FromSeconds(10), OverlayRouter.HousekeepingPeriod(o with { UnansweredAging = TimeSpan.Zero }));
        Assert.Equal(TimeSpan.FromMilliseconds(100), OverlayRouter.HousekeepingPeriod(o with { UnansweredAging = TimeSpan.FromMilliseconds(500) }));
        Assert.Equal(TimeSpan.FromMilliseconds(400), OverlayRouter.HousekeepingPeriod(o with { FdbAging = TimeSpan.FromSeconds(4) }));
    }

    [Theory]
    [InlineData(-1000)]
    [InlineData(1)]
    [InlineData(499)]
    public void A_window_below_half_a_second_or_negative_is_refused_naming_the_field(int ms)
    {
        var errors = new RouterOptions { Underlay = Vtep(1), UnansweredAging = TimeSpan.FromMilliseconds(ms) }.Validate();
        var e = Assert.Single(errors);
        Assert.Equal("UnansweredAging", e.Path);
        Assert.Contains("0 (off) or at least 500 ms", e.Message);
        Assert.Empty(new RouterOptions { Underlay = Vtep(1), UnansweredAging = TimeSpan.Zero }.Validate());
    }

    // ---- Whole routers, default options ----

    private static FdbEntryStatus? Entry(OverlayRouter r, MacAddress mac) =>
        r.GetStatus().Net("blue").Fdb.SingleOrDefault(e => e.Mac == mac.ToString());

    /// <summary>Injects a1 → M every 100 ms (a ping into the void) until disposed.</summary>
    private static Timer SendEvery100ms(ChannelTap a1, MacAddress to) =>
        new(_ => a1.Inject(Packets.Udp4(A1, to, "198.18.0.11", "198.18.0.50", 64)), null, TimeSpan.Zero, TimeSpan.FromMilliseconds(100));

    [Fact]
    public async Task A_MAC_learned_behind_a_VTEP_that_went_silent_is_found_again_behind_its_new_host()
    {
        var (ra, a) = _hosts.Add(1, [2, 3], [Blue], [Endpoint("blue", "a1", "198.18.0.11")]);
        var (rb, b) = _hosts.Add(2, [1, 3], [Blue], [Endpoint("blue", "m", "198.18.0.50")]);
        var (rc, c) = _hosts.Add(3, [1, 2], [Blue], []);

        // M (on B) speaks: A learns M behind B.
        b.Tap("m").Inject(Packets.Udp4(M, A1, "198.18.0.50", "198.18.0.11"));
        Assert.NotNull(a.Tap("a1").WaitTake(Wait));
        Assert.Equal(("learned", Vtep(2).ToString()), Entry(ra, M) is { } learned ? (learned.Source, learned.Destination) : default);
        Assert.Equal(0, Assert.Single(ra.GetStatus().PeerDetails!, p => p.Vtep == Vtep(2).ToString()).LastHeardSeconds!.Value, 0.5);

        // B goes silent (its router stops: nothing answers at its address), and M comes up on C with the same MAC and IP.
        rb.Dispose();
        rc.AttachEndpoint(Endpoint("blue", "m", "198.18.0.50"));
        var sw = Stopwatch.StartNew();
        using (SendEvery100ms(a.Tap("a1"), M))
        {
            await Eventually.True(() => Entry(ra, M) is not { Destination: var d } || d != Vtep(2).ToString(), TimeSpan.FromSeconds(8),
                "A to forget M behind the silent B (5 s window + 1 s sweep)");
            var forgotten = sw.Elapsed;
            Assert.True(forgotten >= TimeSpan.FromSeconds(4.8), $"removed after {forgotten.TotalSeconds:0.0} s, before the 5 s window had passed");

            // The next frames flood, reach M on C, and M's answer teaches A where it lives now.
            Assert.NotNull(c.Tap("m").WaitTake(TimeSpan.FromSeconds(Math.Max(0.1, 10 - sw.Elapsed.TotalSeconds))));
            c.Tap("m").Inject(Packets.Udp4(M, A1, "198.18.0.50", "198.18.0.11"));
            await Eventually.True(() => Entry(ra, M) is { Source: "learned" } e && e.Destination == Vtep(3).ToString(), Wait, "A to learn M behind C");
            Assert.True(sw.Elapsed < TimeSpan.FromSeconds(10), $"traffic to M resumed only after {sw.Elapsed.TotalSeconds:0.0} s");
        }
        var s = ra.GetStatus();
        Assert.Equal(1, s.Net("blue").Counters.FdbUnansweredRemoved);
        Assert.Equal(5, s.FdbUnansweredSeconds);
        Assert.True(s.PeerDetails!.Single(p => p.Vtep == Vtep(2).ToString()).LastHeardSeconds >= 5);
        Assert.True(s.PeerDetails!.Single(p => p.Vtep == Vtep(3).ToString()).LastHeardSeconds < 5);
        Assert.Equal(s.Peers, s.PeerDetails!.Select(p => p.Vtep));
    }

    [Fact]
    public async Task A_quiet_but_live_VTEP_keeps_its_entries_whether_the_MAC_answers_or_the_VTEP_sends_anything_else()
    {
        var (ra, a) = _hosts.Add(1, [2, 3], [Blue], [Endpoint("blue", "a1", "198.18.0.11")]);
        var (_, b) = _hosts.Add(2, [1, 3], [Blue], [Endpoint("blue", "m", "198.18.0.50"), Endpoint("blue", "n", "198.18.0.51")]);
        var n = MacOf("198.18.0.51");
        var q = MacOf("198.18.0.52"); // behind a VTEP that never existed: the control, it must go

        b.Tap("m").Inject(Packets.Udp4(M, A1, "198.18.0.50", "198.18.0.11"));
        Assert.NotNull(a.Tap("a1").WaitTake(Wait));
        _hosts.Underlay.Deliver(Vtep(3), Vtep(1), Packets.Vxlan(Blue.Vni, Packets.Udp4(q, A1, "198.18.0.52", "198.18.0.11")));
        Assert.NotNull(a.Tap("a1").WaitTake(Wait));
        Assert.Equal(Vtep(2).ToString(), Entry(ra, M)?.Destination);
        Assert.Equal(Vtep(3).ToString(), Entry(ra, q)?.Destination);

        // For 7 s a1 sends to M and to q every 100 ms. M never answers; only n, behind the same VTEP, speaks now and then.
        var sw = Stopwatch.StartNew();
        using (SendEvery100ms(a.Tap("a1"), M))
        using (SendEvery100ms(a.Tap("a1"), q))
        using (new Timer(_ => b.Tap("n").Inject(Packets.Udp4(n, A1, "198.18.0.51", "198.18.0.11")), null, 0, 1000))
        {
            await Eventually.True(() => Entry(ra, q) is null, TimeSpan.FromSeconds(8), "the entry behind the silent VTEP to go");
            while (sw.Elapsed < TimeSpan.FromSeconds(7)) await Task.Delay(100, TestContext.Current.CancellationToken);
            Assert.Equal(("learned", Vtep(2).ToString()), Entry(ra, M) is { } e ? (e.Source, e.Destination) : default);
        }
        Assert.Equal(1, ra.GetStatus().Net("blue").Counters.FdbUnansweredRemoved); // q only
        // Every frame to M went to B alone, none flooded: the sends after q went show only B for M.
        var toM = a.Underlay!.Sent.Where(x => x.Payload.AsSpan(8).Slice(0, 6).SequenceEqual(Packets.Phys(M).GetAddressBytes())).ToList();
        Assert.True(toM.Count >= 50, $"only {toM.Count} frames to M were sent");
        Assert.All(toM, x => Assert.Equal(Vtep(2), x.To));

        // Then the MAC answers and n stops: the answers alone keep it.
        sw.Restart();
        using (SendEvery100ms(a.Tap("a1"), M))
        using (new Timer(_ => b.Tap("m").Inject(Packets.Udp4(M, A1, "198.18.0.50", "198.18.0.11")), null, 0, 1000))
            while (sw.Elapsed < TimeSpan.FromSeconds(7)) await Task.Delay(100, TestContext.Current.CancellationToken);
        Assert.Equal(Vtep(2).ToString(), Entry(ra, M)?.Destination);
        Assert.Equal(1, ra.GetStatus().Net("blue").Counters.FdbUnansweredRemoved);
    }

    [Fact]
    public async Task Static_gossip_and_local_entries_stay_while_sent_to_behind_silent_VTEPs()
    {
        var s = MacOf("198.18.0.60");
        var g = MacOf("198.18.0.61");
        var l = MacAddress.Parse("02:00:00:00:77:01"); // learned behind the local port a3
        var x = MacOf("198.18.0.62"); // learned behind VTEP 2: the control
        var (ra, a) = _hosts.Add(1, [2, 3], [Blue], [Endpoint("blue", "a1", "198.18.0.11"), Endpoint("blue", "a3", "198.18.0.13")],
            o => o with { StaticFdb = [new StaticFdbEntry { Network = "blue", Mac = s, Vtep = Vtep(2) }] });
        ra.SetRemoteEndpoint("blue", g, Ip("198.18.0.61"), Vtep(3));
        a.Tap("a3").Inject(Packets.Udp4(l, A1, "198.18.0.70", "198.18.0.11"));
        Assert.NotNull(a.Tap("a1").WaitTake(Wait));
        _hosts.Underlay.Deliver(Vtep(2), Vtep(1), Packets.Vxlan(Blue.Vni, Packets.Udp4(x, A1, "198.18.0.62", "198.18.0.11")));
        Assert.NotNull(a.Tap("a1").WaitTake(Wait));
        var before = ra.GetStatus().Net("blue").Fdb.ToDictionary(e => e.Mac, e => e.Source);
        Assert.Equal(["static", "gossip", "learned", "learned"], new[] { s, g, l, x }.Select(m => before[m.ToString()]));

        var sw = Stopwatch.StartNew();
        var timers = new[] { s, g, l, x }.Select(m => SendEvery100ms(a.Tap("a1"), m)).ToList();
        try
        {
            await Eventually.True(() => Entry(ra, x) is null, TimeSpan.FromSeconds(8), "the learned remote entry to go");
            while (sw.Elapsed < TimeSpan.FromSeconds(7)) await Task.Delay(100, TestContext.Current.CancellationToken);
        }
        finally { foreach (var t in timers) t.Dispose(); }
        var after = ra.GetStatus().Net("blue");
        Assert.Equal(["static", "gossip", "learned"], new[] { s, g, l }.Select(m => after.Fdb.Single(e => e.Mac == m.ToString()).Source));
        Assert.Equal("local:a3/eth0", after.Fdb.Single(e => e.Mac == l.ToString()).Destination);
        Assert.Equal(1, after.Counters.FdbUnansweredRemoved);
        Assert.True(a.Tap("a3").WrittenCount > 0); // frames to l were delivered on the host
    }
}
