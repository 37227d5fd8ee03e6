namespace UserOverlay.Crypto.Tests;

public class ReplayWindowTests
{
    /// <summary>The obvious model: everything seen, the highest, and the window rule.</summary>
    private sealed class SlowWindow
    {
        private readonly HashSet<ulong> _seen = [];
        private ulong _top;

        public ReplayCheck Check(ulong s)
        {
            if (s == 0) return ReplayCheck.TooOld;
            if (s > _top) return ReplayCheck.Fresh;
            if (_top - s >= (ulong)ReplayWindow.WindowSize) return ReplayCheck.TooOld;
            return _seen.Contains(s) ? ReplayCheck.Replayed : ReplayCheck.Fresh;
        }

        public void Accept(ulong s)
        {
            _seen.Add(s);
            _top = Math.Max(_top, s);
        }
    }

    [Fact]
    public void Window_is_at_least_1024_packets() => Assert.True(Esp.ReplayWindowSize >= 1024);

    [Theory]
    [InlineData(1, 50)]
    [InlineData(2, 5000)]
    [InlineData(3, 70000)]
    public void Matches_a_naive_model_over_random_streams(int seed, int spread)
    {
        var rng = new Random(seed);
        var window = new ReplayWindow();
        var model = new SlowWindow();
        ulong baseSeq = 1;
        for (int i = 0; i < 60000; i++)
        {
            // Mostly advancing, with reordering, duplicates and occasional big jumps.
            ulong s = rng.Next(10) switch
            {
                0 => baseSeq + (ulong)rng.Next(spread),
                1 => baseSeq > 100 ? baseSeq - (ulong)rng.Next(100) : baseSeq,
                2 => baseSeq > (ulong)spread ? baseSeq - (ulong)rng.Next(spread) : 1,
                _ => baseSeq++,
            };
            ReplayCheck expected = model.Check(s);
            Assert.Equal(expected, window.Check(s));
            bool accepted = window.TryAccept(s);
            Assert.Equal(expected == ReplayCheck.Fresh, accepted);
            if (accepted)
                model.Accept(s);
            Assert.Equal(window.Top, Math.Max(window.Top, s) == window.Top ? window.Top : s);
        }
    }

    [Theory]
    [InlineData(100ul)]
    [InlineData(127ul)]
    [InlineData(128ul)]
    [InlineData(5000ul)]
    [InlineData(0xFFFF_FFFFul)]
    public void A_raised_floor_rejects_everything_up_to_it_and_nothing_above(ulong floor)
    {
        var w = new ReplayWindow();
        w.TryAccept(3);
        w.RaiseFloor(floor);
        for (ulong s = floor > 5000 ? floor - 5000 : 1; s <= floor; s++)
            Assert.NotEqual(ReplayCheck.Fresh, w.Check(s));
        // Above the floor: fresh, also out of order.
        Assert.True(w.TryAccept(floor + 3));
        Assert.True(w.TryAccept(floor + 1));
        Assert.True(w.TryAccept(floor + 2));
        Assert.False(w.TryAccept(floor + 2));
        Assert.True(w.TryAccept(floor + 70));
        Assert.True(w.TryAccept(floor + 64));
        w.RaiseFloor(5); // never lowers
        Assert.Equal(floor + 70, w.Top);
    }

    [Fact]
    public void Zero_value_is_ready_and_zero_is_never_fresh()
    {
        var w = new ReplayWindow();
        Assert.Equal(ReplayCheck.TooOld, w.Check(0));
        Assert.Equal(ReplayCheck.Fresh, w.Check(1));
        Assert.True(w.TryAccept(1));
        Assert.False(w.TryAccept(1));
        Assert.Equal(1ul, w.Top);
    }

    [Theory]
    // (top, low on the wire) -> inferred 64-bit sequence (RFC 4303 Appendix A2.2)
    [InlineData(0x0000_0000_0000_0000ul, 1u, 0x0000_0000_0000_0001ul)]
    [InlineData(0x0000_0001_0000_0010ul, 0xFFFF_FFF0u, 0x0000_0000_FFFF_FFF0ul)] // just before the boundary, inside the window
    [InlineData(0x0000_0001_0000_0010ul, 0x0000_0020u, 0x0000_0001_0000_0020ul)]
    [InlineData(0x0000_0000_FFFF_FFF0ul, 0x0000_0005u, 0x0000_0001_0000_0005ul)] // crossed into the next subspace
    [InlineData(0x0000_0000_FFFF_FFF0ul, 0xFFFF_FF00u, 0x0000_0000_FFFF_FF00ul)]
    [InlineData(0x8765_4320_FFFF_FFFFul, 0x0000_0000u, 0x8765_4321_0000_0000ul)]
    public void Infers_the_high_half_of_extended_sequence_numbers(ulong top, uint low, ulong expected)
    {
        Assert.True(ReplayWindow.TryInferExtended(top, low, out ulong s));
        Assert.Equal(expected, s);
    }

    [Fact]
    public void A_low_half_from_before_the_first_subspace_cannot_be_fresh()
    {
        Assert.False(ReplayWindow.TryInferExtended(5, 0xFFFF_FFFEu, out _));
    }

    [Fact]
    public void Extended_sequence_numbers_cross_the_32_bit_boundary_end_to_end()
    {
        var p = new EspSaParameters
        {
            Spi = 0x1000,
            Key = Enumerable.Repeat((byte)9, 32).ToArray(),
            Salt = [1, 2, 3, 4],
            ExtendedSequenceNumbers = true,
        };
        using var outbound = new OutboundSa(p, lastSequence: 0xFFFF_FFF0);
        using var inbound = new InboundSa(p);
        inbound.AcceptForTest(0xFFFF_FFEF);
        var packets = new List<byte[]>();
        for (int i = 0; i < 40; i++)
        {
            byte[] payload = Packets.VxlanIcmp(7, (ushort)i);
            byte[] buf = Packets.InBuffer(payload);
            Assert.Equal(EspSealStatus.Ok, outbound.Seal(buf, 64, payload.Length, Esp.NextHeaderUdp, out int n));
            packets.Add(buf.AsSpan(64 - Esp.HeaderLength, n).ToArray());
        }
        var rng = new Random(3);
        foreach (byte[] pk in packets.OrderBy(_ => rng.Next()))
            Assert.Equal(EspOpenStatus.Ok, inbound.Open(pk, out _, out _, out _));
        Assert.Equal(0x1_0000_0018ul, inbound.HighestSequence);
    }
}
