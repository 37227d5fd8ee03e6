namespace UserOverlay.Membership;

/// <summary>memberlist's scaling formulas.</summary>
internal static class Scaling
{
    /// <summary>Suspicion timeout: <c>SuspicionMult · max(1, log10(max(1, n))) · ProbeInterval</c>.</summary>
    public static TimeSpan SuspicionTimeout(int suspicionMult, int n, TimeSpan interval)
    {
        double nodeScale = Math.Max(1.0, Math.Log10(Math.Max(1.0, n)));
        return TimeSpan.FromTicks((long)(suspicionMult * Math.Floor(nodeScale * 1000) * interval.Ticks / 1000));
    }

    /// <summary>Push/pull interval: unchanged up to 32 members, then <c>(ceil(log2 n − log2 32) + 1) · interval</c>.</summary>
    public static TimeSpan PushPullScale(TimeSpan interval, int n)
    {
        const int threshold = 32;
        if (n <= threshold) return interval;
        double multiplier = Math.Ceiling(Math.Log2(n) - Math.Log2(threshold)) + 1.0;
        return interval * multiplier;
    }

    /// <summary>A random duration in [0, interval).</summary>
    public static TimeSpan RandomStagger(TimeSpan interval) =>
        interval <= TimeSpan.Zero ? TimeSpan.Zero : TimeSpan.FromTicks(Random.Shared.NextInt64(interval.Ticks));
}
