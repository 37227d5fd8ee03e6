using System.Collections.Concurrent;
using System.Net;
using System.Text;
using UserOverlay.Membership.Security;
using UserOverlay.Testing.Common;

namespace UserOverlay.Membership.Tests;

/// <summary>
/// Gossip keys changed while two members run on loopback UDP and TCP (the real transport), with probes, gossip and
/// user messages flowing both ways all the time: rotated in memberlist's order nothing is lost; out of order it is.
/// </summary>
public class KeyRotationTests
{
    private static readonly TimeSpan Wait = TimeSpan.FromSeconds(20);

    private static byte[] K(int generation) => [.. Enumerable.Range(0, 32).Select(i => (byte)(generation * 17 + i))];

    /// <summary>Each member sends the other a numbered best-effort datagram every few milliseconds and a reliable
    /// (TCP) message every tenth, until stopped; counts what was sent and what arrived.</summary>
    private sealed class Chatter
    {
        private readonly Memberlist _from, _to;
        private readonly TestDelegate _toDelegate;
        private readonly string _tag;
        public int Sent;
        public int SendErrors;

        public Chatter(Memberlist from, Memberlist to, TestDelegate toDelegate)
        {
            _from = from;
            _to = to;
            _toDelegate = toDelegate;
            _tag = from.Name + ">" + to.Name + ":";
        }

        public async Task RunAsync(CancellationToken stop)
        {
            for (int i = 0; !stop.IsCancellationRequested; i++)
            {
                byte[] msg = Encoding.ASCII.GetBytes(_tag + i);
                try
                {
                    if (i % 10 == 0) await _from.SendReliableAsync(_to.AdvertiseEndPoint, msg, CancellationToken.None);
                    else await _from.SendBestEffortAsync(_to.AdvertiseEndPoint, msg, CancellationToken.None);
                    Sent = i + 1;
                }
                catch (Exception)
                {
                    Interlocked.Increment(ref SendErrors);
                    Sent = i + 1;
                }
                try { await Task.Delay(5, stop); } catch (OperationCanceledException) { }
            }
        }

        /// <summary>Numbers below <see cref="Sent"/> that did not arrive.</summary>
        public IReadOnlyList<int> Missing()
        {
            var got = new HashSet<int>();
            foreach (byte[] m in _toDelegate.Received)
            {
                string s = Encoding.ASCII.GetString(m);
                if (s.StartsWith(_tag, StringComparison.Ordinal)) got.Add(int.Parse(s[_tag.Length..], System.Globalization.CultureInfo.InvariantCulture));
            }
            return [.. Enumerable.Range(0, Sent).Where(i => !got.Contains(i))];
        }
    }

    private static async Task<(Memberlist A, Memberlist B, TestDelegate Da, TestDelegate Db, Keyring Ra, Keyring Rb)> StartPair()
    {
        var ra = new Keyring(K(1));
        var rb = new Keyring(K(1));
        var da = new TestDelegate();
        var db = new TestDelegate();
        // Timeouts a loaded 2-core machine meets (a failed probe here would be the machine, not the keys).
        MembershipOptions Opts(string name, Keyring ring, TestDelegate d) => InMemoryCluster.Fast(name) with
        {
            BindAddress = IPAddress.Loopback,
            BindPort = 0,
            Keyring = ring,
            Delegate = d,
            ProbeInterval = TimeSpan.FromMilliseconds(200),
            ProbeTimeout = TimeSpan.FromMilliseconds(150),
            TcpTimeout = TimeSpan.FromSeconds(2),
        };
        var a = await Memberlist.CreateAsync(Opts("ka", ra, da));
        var b = await Memberlist.CreateAsync(Opts("kb", rb, db));
        Assert.Equal(1, await b.JoinAsync([$"127.0.0.1:{a.AdvertiseEndPoint.Port}"]));
        await Eventually.True(() => a.NumMembers == 2 && b.NumMembers == 2, Wait, "loopback join");
        return (a, b, da, db, ra, rb);
    }

    [Fact]
    public async Task Keys_rotated_in_memberlist_order_lose_no_probe_and_no_message()
    {
        var (a, b, da, db, ra, rb) = await StartPair();
        await using var _a = a;
        await using var _b = b;
        var ab = new Chatter(a, b, db);
        var ba = new Chatter(b, a, da);
        using var stop = new CancellationTokenSource();
        Task[] chatter = [Task.Run(() => ab.RunAsync(stop.Token)), Task.Run(() => ba.RunAsync(stop.Token))];
        long probesBefore = a.Stats.Probes + b.Stats.Probes;

        async Task Pause()
        {
            await Task.Delay(250);
            await b.PushPullAsync(a.AdvertiseEndPoint); // a full state exchange over TCP under the keys of the moment
        }

        await Pause();
        for (int g = 1; g <= 3; g++)
        {
            byte[] old = K(g), next = K(g + 1);
            // 1. The new key is accepted everywhere (b first), the old one still encrypts.
            rb.SetKeys(old, [next]);
            await Pause();
            ra.SetKeys(old, [next]);
            await Pause();
            // 2. The new key encrypts (a first), the old one is still accepted.
            ra.SetKeys(next, [old]);
            await Pause();
            rb.SetKeys(next, [old]);
            await Pause();
            // 3. The old key goes.
            ra.SetKeys(next);
            await Pause();
            rb.SetKeys(next);
            await Pause();
        }
        stop.Cancel();
        await Task.WhenAll(chatter);
        await Eventually.True(() => ab.Missing().Count == 0 && ba.Missing().Count == 0, TimeSpan.FromSeconds(5),
            "every message sent during the rotation arrived");

        Assert.True(ab.Sent > 100 && ba.Sent > 100, $"{ab.Sent} and {ba.Sent} messages sent");
        Assert.Equal(0, ab.SendErrors + ba.SendErrors);
        Assert.True(a.Stats.Probes + b.Stats.Probes - probesBefore >= 20, "probes ran during the rotation");
        Assert.Equal(0, a.Stats.ProbesFailed + b.Stats.ProbesFailed);
        Assert.Equal(0, a.Stats.SuspicionsStarted + b.Stats.SuspicionsStarted);
        foreach (var m in new[] { a, b })
        {
            Assert.Equal(0, m.Drops[DropReason.DecryptionFailed]);
            Assert.Equal(0, m.Drops[DropReason.NotEncrypted]);
            Assert.Equal(MemberState.Alive, m.AllMembers.Single(x => x.Name != m.Name).State);
        }
        Assert.True(ra.PrimaryKey.Span.SequenceEqual(K(4)) && ra.Count == 1 && rb.PrimaryKey.Span.SequenceEqual(K(4)) && rb.Count == 1);
    }

    [Fact]
    public async Task A_primary_the_peer_does_not_hold_is_dropped_there()
    {
        var (a, b, _, db, ra, _) = await StartPair();
        await using var _a = a;
        await using var _b = b;
        ra.SetKeys(K(9), [K(1)]); // b never got K(9)
        await a.SendBestEffortAsync(b.AdvertiseEndPoint, "lost"u8.ToArray());
        await Eventually.True(() => b.Drops[DropReason.DecryptionFailed] >= 1, Wait, "b cannot decrypt a's messages");
        await Assert.ThrowsAnyAsync<Exception>(() => a.PushPullAsync(b.AdvertiseEndPoint));
        Assert.DoesNotContain(db.Received, m => m.AsSpan().SequenceEqual("lost"u8));
    }

    [Fact]
    public void SetKeys_replaces_the_ring_at_once_and_refuses_bad_keys_leaving_it_as_it_was()
    {
        var ring = new Keyring(K(1));
        ring.SetKeys(K(2), [K(1), K(2), K(3)]);
        Assert.Equal(3, ring.Count);
        Assert.True(ring.PrimaryKey.Span.SequenceEqual(K(2)));
        Assert.Equal([K(2), K(1), K(3)], ring.Keys.Select(k => k.ToArray()));
        Assert.Contains("16, 24 or 32", Assert.Throws<ArgumentException>(() => ring.SetKeys(K(4), [new byte[7]])).Message);
        Assert.Throws<ArgumentException>(() => ring.SetKeys(new byte[5]));
        Assert.Equal(3, ring.Count);
        Assert.True(ring.PrimaryKey.Span.SequenceEqual(K(2)));

        // Readers see whole rings while writers change it.
        ring.SetKeys(K(0), [K(1)]);
        var seen = new ConcurrentBag<int>();
        var writer = Task.Run(() =>
        {
            for (int i = 0; i < 5000; i++) ring.SetKeys(K(i % 5), [K(i % 5 + 1)]);
        }, TestContext.Current.CancellationToken);
        while (!writer.IsCompleted)
        {
            var keys = ring.Keys;
            if (keys.Count != 2 || keys[1].Span[0] != (byte)(keys[0].Span[0] + 17)) seen.Add(keys.Count);
        }
        Assert.Empty(seen);
    }
}
