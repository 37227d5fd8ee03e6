namespace UserOverlay.Crypto;

/// <summary>
/// Key epochs: epoch <c>e</c> covers the time [UnixEpoch + e × interval, UnixEpoch + (e + 1) × interval).
/// Every host computes it from its own clock, so hosts agree without talking; receivers accept the neighbouring
/// epochs (<see cref="EspOptions.EpochSpread"/>), which absorbs clock skew up to one interval.
/// </summary>
public static class EspEpoch
{
    /// <summary>Epoch containing <paramref name="time"/> (floor division of ticks since 1970-01-01T00:00Z).</summary>
    public static long Of(DateTimeOffset time, TimeSpan interval)
    {
        long ticks = time.UtcTicks - DateTimeOffset.UnixEpoch.UtcTicks;
        long e = ticks / interval.Ticks;
        if (ticks < 0 && ticks % interval.Ticks != 0)
            e--;
        return e;
    }

    /// <summary>First instant of <paramref name="epoch"/>.</summary>
    public static DateTimeOffset Start(long epoch, TimeSpan interval) =>
        DateTimeOffset.UnixEpoch + TimeSpan.FromTicks(epoch * interval.Ticks);
}
