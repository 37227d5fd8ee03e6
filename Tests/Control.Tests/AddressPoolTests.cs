using UserOverlay.Control.Ipam;
using UserOverlay.Control.Networks;
using UserOverlay.Router;

namespace UserOverlay.Control.Tests;

/// <summary>The bitmap pool against a naive HashSet model over random operations, plus its edge cases.</summary>
public class AddressPoolTests
{
    private static uint A(string s) => Ipv4Prefix.TryParseAddress(s, out uint a) ? a : throw new FormatException(s);
    private static Ipv4Prefix P(string s) => Ipv4Prefix.TryParse(s, out var p, out string why) ? p : throw new FormatException(why);

    /// <summary>
    /// The reference model: a HashSet of taken addresses and a linear scan, written the obvious way from Docker's rule
    /// (next after the last handed out, wrapping within the range; specific anywhere in the subnet, cursor unchanged).
    /// </summary>
    private sealed class SlowIpam(Ipv4Prefix subnet, Ipv4Prefix range, IEnumerable<uint> reserved)
    {
        private readonly HashSet<uint> _taken = [];
        private readonly HashSet<uint> _reserved = [.. reserved, subnet.Network, subnet.Network | ~subnet.Mask];
        private readonly uint _first = range.Network, _last = range.Network | ~range.Mask;
        private uint _cursor = range.Network;

        public int Count => _taken.Count;
        public bool IsAllocated(uint a) => _taken.Contains(a);

        public uint? AllocateNext()
        {
            uint size = _last - _first + 1;
            for (uint i = 0; i < size; i++)
            {
                uint a = _first + (_cursor - _first + i) % size;
                if (_reserved.Contains(a) || _taken.Contains(a)) continue;
                _taken.Add(a);
                _cursor = a == _last ? _first : a + 1;
                return a;
            }
            return null;
        }

        public bool AllocateSpecific(uint a) => subnet.Contains(a) && !_reserved.Contains(a) && _taken.Add(a);

        public bool Release(uint a) => _taken.Remove(a);
    }

    public static TheoryData<int, string, string?, string[]> Pools => new()
    {
        { 1, "198.18.0.0/29", null, ["198.18.0.1"] },                                  // tiny: exhausted all the time
        { 2, "198.18.0.0/29", "198.18.0.4/30", ["198.18.0.1", "198.18.0.5"] },        // ip-range of 4, one reserved in it
        { 3, "198.18.0.0/24", "198.18.0.128/27", ["198.18.0.1", "198.18.0.130"] },    // specifics land outside the range
        { 4, "198.18.0.0/22", null, ["198.18.0.1", "198.18.1.0", "198.18.3.254"] },   // several words of bitmap
        { 5, "192.0.2.0/24", "192.0.2.0/24", ["192.0.2.254"] },                       // range = subnet, gateway at the end
    };

    [Theory]
    [MemberData(nameof(Pools))]
    public void Matches_reference_model(int seed, string subnetText, string? rangeText, string[] reservedText)
    {
        var rnd = new Random(seed);
        var subnet = P(subnetText);
        Ipv4Prefix? range = rangeText is null ? null : P(rangeText);
        uint[] reserved = [.. reservedText.Select(A)];
        var pool = new AddressPool(subnet, range, reserved);
        var model = new SlowIpam(subnet, range ?? subnet, reserved);
        uint size = ~subnet.Mask + 1;
        // Addresses around the subnet too, so outside ones are exercised.
        uint Any() => subnet.Network - 2 + (uint)rnd.Next((int)size + 4);
        var held = new List<uint>();
        int exhausted = 0;

        for (int i = 0; i < 6_000; i++)
        {
            switch (rnd.Next(10))
            {
                case < 4:
                    uint? expected = model.AllocateNext();
                    bool ok = pool.TryAllocateNext(out uint got);
                    Assert.Equal(expected.HasValue, ok);
                    if (ok) { Assert.Equal(expected!.Value, got); held.Add(got); }
                    else exhausted++;
                    break;
                case < 6:
                    uint want = Any();
                    bool modelOk = model.AllocateSpecific(want);
                    var error = Record.Exception(() => pool.AllocateSpecific(want));
                    Assert.Equal(modelOk, error is null);
                    if (error is not null) Assert.IsType<ControlException>(error);
                    if (modelOk) held.Add(want);
                    break;
                case < 9 when held.Count > 0:
                    int k = rnd.Next(held.Count);
                    uint release = held[k];
                    held.RemoveAt(k);
                    Assert.Equal(model.Release(release), pool.Release(release));
                    break;
                default:
                    uint probe = Any();
                    Assert.Equal(model.Release(probe), pool.Release(probe));
                    held.Remove(probe);
                    break;
            }
            Assert.Equal(model.Count, pool.Count);
            uint p = Any();
            Assert.Equal(model.IsAllocated(p), pool.IsAllocated(p));
        }
        if (pool.Capacity <= 8) Assert.True(exhausted > 0, "a small pool must run out at some point of the run");
    }

    [Fact]
    public void Slash29_hands_out_its_five_hosts_in_order_then_is_exhausted()
    {
        var pool = new AddressPool(P("198.18.0.0/29"), null, [A("198.18.0.1")]);
        Assert.Equal(5, pool.Capacity);
        string[] got = [.. Enumerable.Range(0, 5).Select(_ => VtepEndpoint.FormatAddress(pool.AllocateNext()))];
        Assert.Equal(["198.18.0.2", "198.18.0.3", "198.18.0.4", "198.18.0.5", "198.18.0.6"], got);
        var e = Assert.Throws<ControlException>(() => pool.AllocateNext());
        Assert.Equal(ControlErrorCodes.Exhausted, e.Code);
        Assert.Contains("198.18.0.0/29", e.Message);
    }

    [Fact]
    public void Next_continues_after_the_last_allocation_and_wraps_instead_of_reusing_a_released_address()
    {
        var pool = new AddressPool(P("198.18.0.0/29"), null, [A("198.18.0.1")]);
        uint first = pool.AllocateNext(), second = pool.AllocateNext();
        Assert.True(pool.Release(first));
        Assert.Equal(A("198.18.0.4"), pool.AllocateNext());   // not .2, just released
        Assert.Equal(A("198.18.0.5"), pool.AllocateNext());
        Assert.Equal(A("198.18.0.6"), pool.AllocateNext());
        Assert.Equal(A("198.18.0.2"), pool.AllocateNext());   // wrapped
        Assert.True(pool.IsAllocated(second));
    }

    [Fact]
    public void Specific_may_be_outside_the_ip_range_but_not_outside_the_subnet_nor_reserved_nor_taken()
    {
        var pool = new AddressPool(P("198.18.0.0/24"), P("198.18.0.128/25"), [A("198.18.0.1"), A("198.18.0.200")]);
        pool.AllocateSpecific(A("198.18.0.10"));
        Assert.True(pool.IsAllocated(A("198.18.0.10")));
        Assert.Equal(A("198.18.0.128"), pool.AllocateNext());   // sequential allocation starts at the range
        Assert.Equal(ControlErrorCodes.InvalidArgument, Assert.Throws<ControlException>(() => pool.AllocateSpecific(A("198.18.1.1"))).Code);
        Assert.Equal(ControlErrorCodes.InvalidArgument, Assert.Throws<ControlException>(() => pool.AllocateSpecific(A("198.18.0.255"))).Code);
        Assert.Equal(ControlErrorCodes.Conflict, Assert.Throws<ControlException>(() => pool.AllocateSpecific(A("198.18.0.200"))).Code);
        Assert.Equal(ControlErrorCodes.Conflict, Assert.Throws<ControlException>(() => pool.AllocateSpecific(A("198.18.0.10"))).Code);
        Assert.False(pool.Release(A("198.18.0.1")));   // the gateway is never released
        Assert.True(pool.IsReserved(A("198.18.0.1")));
    }

    [Fact]
    public void Slash16_hands_out_every_host_once_and_allocation_stays_fast_when_nearly_full()
    {
        var pool = new AddressPool(P("198.18.0.0/16"), null, [A("198.18.0.1")]);
        Assert.Equal(65533, pool.Capacity);
        var seen = new HashSet<uint>();
        for (int i = 0; i < pool.Capacity; i++) Assert.True(seen.Add(pool.AllocateNext()));
        Assert.False(pool.TryAllocateNext(out _));
        Assert.DoesNotContain(A("198.18.0.0"), seen);
        Assert.DoesNotContain(A("198.18.0.1"), seen);
        Assert.DoesNotContain(A("198.18.255.255"), seen);

        // Free 4,096 scattered addresses and take them again: each search is a word scan, not a bit-by-bit one.
        var rnd = new Random(7);
        var freed = seen.OrderBy(_ => rnd.Next()).Take(4096).ToHashSet();
        foreach (uint a in freed) Assert.True(pool.Release(a));
        var sw = System.Diagnostics.Stopwatch.StartNew();
        for (int i = 0; i < 4096; i++) Assert.Contains(pool.AllocateNext(), freed);
        Assert.Equal(65533, pool.Count);
        Assert.True(sw.Elapsed < TimeSpan.FromSeconds(2), $"4,096 allocations in a full /16 took {sw.Elapsed}");
    }
}
