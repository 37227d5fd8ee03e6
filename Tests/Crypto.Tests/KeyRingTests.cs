namespace UserOverlay.Crypto.Tests;

/// <summary>The ring type, the mutable source, and the static source's rings of one.</summary>
public class KeyRingTests
{
    internal static NetworkKey Key(byte fill, string id = "net1", int length = 32) => new(id, Enumerable.Repeat(fill, length).ToArray());

    [Fact]
    public void A_ring_holds_its_keys_in_order_with_one_primary()
    {
        NetworkKey k1 = Key(1), k2 = Key(2), k3 = Key(3, length: 16);
        var ring = new NetworkKeyRing([k1, k2, k3], primaryIndex: 1);
        Assert.Equal("net1", ring.Id);
        Assert.Same(k2, ring.Primary);
        Assert.Equal(1, ring.PrimaryIndex);
        Assert.Equal([k1, k2, k3], ring.All);
        Assert.Equal(3, ring.Count);
        Assert.Equal([k1.Fingerprint, k2.Fingerprint, k3.Fingerprint], ring.Fingerprints);
        Assert.True(ring.Contains(Key(3, length: 16)));   // by secret, not by object
        Assert.False(ring.Contains(Key(4)));
        Assert.Equal(2, ring.IndexOf(Key(3, length: 16)));

        // The log form names fingerprints, never secrets.
        string s = ring.ToString();
        Assert.Contains(k2.Fingerprint, s);
        Assert.Contains(k1.Fingerprint, s);
        Assert.DoesNotContain(Convert.ToHexStringLower(k1.Secret), s);

        var one = new NetworkKeyRing(k1);
        Assert.Same(k1, one.Primary);
        Assert.Equal(1, one.Count);
        var primaryFirst = new NetworkKeyRing(k2, k1, k3);
        Assert.Equal([k2, k1, k3], primaryFirst.All);
        Assert.Same(k2, primaryFirst.Primary);
    }

    [Fact]
    public void Rings_compare_by_secrets_order_and_primary()
    {
        NetworkKey k1 = Key(1), k2 = Key(2);
        var a = new NetworkKeyRing([k1, k2], 0);
        Assert.True(a.SameAs(new NetworkKeyRing([Key(1), Key(2)], 0)));
        Assert.False(a.SameAs(new NetworkKeyRing([k1, k2], 1)));     // other primary
        Assert.False(a.SameAs(new NetworkKeyRing([k2, k1], 1)));     // other order
        Assert.False(a.SameAs(new NetworkKeyRing([k1], 0)));         // fewer keys
        Assert.False(a.SameAs(new NetworkKeyRing([k1, Key(3)], 0))); // other secret
        Assert.False(a.SameAs(new NetworkKeyRing([Key(1, "net2"), Key(2, "net2")], 0)));
        Assert.False(a.SameAs(null));

        NetworkKeyRing b = a.WithPrimary(Key(2));
        Assert.Same(k2, b.Primary);
        Assert.Equal([k1, k2], b.All);
        var ex = Assert.Throws<ArgumentException>(() => a.WithPrimary(Key(9)));
        Assert.Contains(Key(9).Fingerprint, ex.Message);
    }

    [Fact]
    public void Bad_rings_are_refused_naming_the_field()
    {
        Assert.Equal("keys", Assert.Throws<ArgumentException>(() => new NetworkKeyRing([], 0)).ParamName);
        Assert.Equal("primaryIndex", Assert.Throws<ArgumentOutOfRangeException>(() => new NetworkKeyRing([Key(1)], 1)).ParamName);
        Assert.Equal("primaryIndex", Assert.Throws<ArgumentOutOfRangeException>(() => new NetworkKeyRing([Key(1)], -1)).ParamName);
        var mixed = Assert.Throws<ArgumentException>(() => new NetworkKeyRing([Key(1), Key(2, "other")], 0));
        Assert.Contains("keys[1] has id 'other'", mixed.Message);
        var twice = Assert.Throws<ArgumentException>(() => new NetworkKeyRing([Key(1), Key(2), Key(1)], 0));
        Assert.Contains("keys[2] holds the same secret as keys[0]", twice.Message);
        Assert.Throws<ArgumentNullException>(() => new NetworkKeyRing(null!, 0));
    }

    [Fact]
    public void The_mutable_source_sets_replaces_and_removes_rings()
    {
        var source = new MutableNetworkKeySource();
        INetworkKeySource s = source;
        Assert.False(s.TryGetRing("net1", out _));
        Assert.False(s.TryGetKey("net1", out _));

        var ring = new NetworkKeyRing([Key(1), Key(2)], 1);
        source.Set("net1", ring);
        Assert.True(s.TryGetRing("net1", out NetworkKeyRing? got));
        Assert.Same(ring, got);
        Assert.True(s.TryGetKey("net1", out NetworkKey? primary));
        Assert.True(primary.SecretEquals(Key(2)));

        source.Set(new NetworkKeyRing(Key(3)));
        Assert.True(s.TryGetKey("net1", out primary));
        Assert.True(primary.SecretEquals(Key(3)));
        Assert.Single(source.Rings);

        source.Set(Key(4));                                   // a single key: a ring of one
        Assert.True(s.TryGetRing("net1", out got));
        Assert.Equal(1, got.Count);
        Assert.True(got.Primary.SecretEquals(Key(4)));

        var ex = Assert.Throws<ArgumentException>(() => source.Set("net2", ring));
        Assert.Contains("ids must match", ex.Message);
        Assert.True(source.Remove("net1"));
        Assert.False(source.Remove("net1"));
        Assert.False(s.TryGetRing("net1", out _));

        Assert.Throws<ArgumentException>(() => new MutableNetworkKeySource([ring, new NetworkKeyRing(Key(5))]));
        Assert.Equal(2, new MutableNetworkKeySource([ring, new NetworkKeyRing(Key(5, "net2"))]).Rings.Count);
    }

    [Fact]
    public async Task Readers_of_the_mutable_source_see_whole_rings_while_it_changes()
    {
        var source = new MutableNetworkKeySource();
        NetworkKey[] keys = [.. Enumerable.Range(1, 8).Select(i => Key((byte)i))];
        source.Set(new NetworkKeyRing([keys[0], keys[1]], 1));
        using var stop = new CancellationTokenSource();
        int torn = 0, reads = 0;
        var readers = Enumerable.Range(0, 2).Select(_ => Task.Run(() =>
        {
            while (!stop.IsCancellationRequested)
            {
                if (!source.TryGetRing("net1", out NetworkKeyRing? r) || r.Count != 2 || !r.Contains(r.Primary) || r.Primary != r.All[1]
                    || r.All[1].Secret[0] != r.All[0].Secret[0] + 1)
                    Interlocked.Increment(ref torn);
                Interlocked.Increment(ref reads);
            }
        })).ToArray();
        for (int i = 0; i < 20_000 || Volatile.Read(ref reads) < 1000; i++)
        {
            int j = i % 7;
            source.Set(new NetworkKeyRing([keys[j], keys[j + 1]], 1));
        }
        stop.Cancel();
        await Task.WhenAll(readers);
        Assert.True(reads > 0);
        Assert.Equal(0, torn);
    }

    [Fact]
    public void The_static_source_gives_a_ring_of_one_per_key()
    {
        var source = new StaticNetworkKeySource([Key(1), Key(2, "net2")]);
        INetworkKeySource s = source;
        Assert.True(s.TryGetRing("net1", out NetworkKeyRing? ring));
        Assert.Equal(1, ring.Count);
        Assert.True(ring.Primary.SecretEquals(Key(1)));
        source.Set(Key(3));
        Assert.True(s.TryGetRing("net1", out ring));
        Assert.True(ring.Primary.SecretEquals(Key(3)));
        Assert.Equal(2, source.Keys.Count);
        Assert.True(source.Remove("net2"));
        Assert.False(s.TryGetRing("net2", out _));
    }

    [Fact]
    public void A_source_with_only_TryGetKey_still_works_as_a_ring_of_one()
    {
        INetworkKeySource s = new KeyOnlySource(Key(7));
        Assert.True(s.TryGetRing("net1", out NetworkKeyRing? ring));
        Assert.True(ring.Primary.SecretEquals(Key(7)));
        Assert.False(s.TryGetRing("other", out _));
        using var db = new EspSecurityDatabase(Packets.HostA, s, new EspOptions { SequenceStore = new InMemorySequenceStore() }, Pair.T0);
        EspPeer p = db.AddPeer("net1", Packets.HostB);
        Assert.NotNull(p.CurrentOutbound);
        Assert.Equal(3, db.InboundCount);
    }

    private sealed class KeyOnlySource(NetworkKey key) : INetworkKeySource
    {
        public bool TryGetKey(string keyId, [System.Diagnostics.CodeAnalysis.NotNullWhen(true)] out NetworkKey? k)
        {
            k = keyId == key.Id ? key : null;
            return k is not null;
        }
    }
}
