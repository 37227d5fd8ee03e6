// The Lifeguard pieces of memberlist: local health awareness and suspicion timers that shrink
// with independent confirmations. Formulas follow memberlist (and the Lifeguard paper,
// arXiv:1707.00788); the code is ours.

namespace UserOverlay.Membership;

/// <summary>
/// A suspicion timer. It starts at <c>max</c> (or <c>min</c> when no confirmations are expected)
/// and every independent confirmation (a suspect message from another member) shortens it to
/// <c>max − log(n + 1)/log(k + 1) · (max − min)</c>, never below <c>min</c>, where n is the number
/// of confirmations and k the number expected. Fires <c>onTimeout(confirmations)</c> once.
/// Stronger evidence than a confirmation (our own probe refused) ends it sooner (<see cref="EndWithin"/>).
/// Confirm and EndWithin are called under the member's state lock; the timer callback runs on the thread pool.
/// </summary>
internal sealed class Suspicion : IDisposable
{
    private readonly int _k;
    private readonly TimeSpan _min, _max;
    private readonly long _start = Environment.TickCount64;
    private readonly HashSet<string> _confirmations = [];
    private readonly Timer _timer;
    private readonly Action<int> _onTimeout;
    private int _n;
    private int _fired;
    private long _deadline;

    public Suspicion(string from, int k, TimeSpan min, TimeSpan max, Action<int> onTimeout)
    {
        _k = k;
        _min = min;
        _max = max;
        _onTimeout = onTimeout;
        _confirmations.Add(from);
        TimeSpan timeout = k < 1 ? min : max;
        _deadline = _start + (long)timeout.TotalMilliseconds;
        _timer = new Timer(_ => Fire(), null, timeout, Timeout.InfiniteTimeSpan);
    }

    public int Confirmations => Volatile.Read(ref _n);

    /// <summary>Timeout remaining after <paramref name="elapsed"/> with n confirmations of k expected.</summary>
    public static TimeSpan RemainingTime(int n, int k, TimeSpan elapsed, TimeSpan min, TimeSpan max)
    {
        double frac = Math.Log(n + 1.0) / Math.Log(k + 1.0);
        double raw = max.TotalSeconds - frac * (max.TotalSeconds - min.TotalSeconds);
        var timeout = TimeSpan.FromMilliseconds(Math.Floor(1000.0 * raw));
        if (timeout < min) timeout = min;
        return timeout - elapsed;
    }

    /// <summary>Registers a confirmation from <paramref name="from"/>; true if it was new (then it is worth re-gossiping).</summary>
    public bool Confirm(string from)
    {
        if (_n >= _k) return false;
        if (!_confirmations.Add(from)) return false;
        int n = ++_n;
        var elapsed = TimeSpan.FromMilliseconds(Environment.TickCount64 - _start);
        var remaining = RemainingTime(n, _k, elapsed, _min, _max);
        long deadline = _start + (long)(elapsed + remaining).TotalMilliseconds;
        if (deadline < _deadline) Reschedule(deadline);
        return true;
    }

    /// <summary>Makes the timer fire within <paramref name="within"/> from now, if it would fire later (evidence beyond confirmations).</summary>
    public void EndWithin(TimeSpan within)
    {
        long deadline = Environment.TickCount64 + (long)within.TotalMilliseconds;
        if (deadline < _deadline) Reschedule(deadline);
    }

    private void Reschedule(long deadline)
    {
        _deadline = deadline;
        long remaining = deadline - Environment.TickCount64;
        if (remaining > 0) _timer.Change(TimeSpan.FromMilliseconds(remaining), Timeout.InfiniteTimeSpan);
        else ThreadPool.QueueUserWorkItem(_ => Fire());
    }

    private void Fire()
    {
        if (Interlocked.Exchange(ref _fired, 1) != 0) return;
        _onTimeout(Volatile.Read(ref _n));
    }

    /// <summary>Stops the timer (the node refuted, died otherwise, or was reaped).</summary>
    public void Dispose()
    {
        Interlocked.Exchange(ref _fired, 1);
        _timer.Dispose();
    }
}
