// The Lifeguard pieces of memberlist: local health awareness and suspicion timers that shrink
// with independent confirmations. Formulas follow memberlist (and the Lifeguard paper,
// arXiv:1707.00788); the code is ours.

namespace UserOverlay.Membership;

/// <summary>
/// Local health ("awareness"): a score in [0, max − 1]. Failed probes without the expected nacks and
/// refutations raise it; successful probes lower it. Timeouts scale by (score + 1), so a node that is
/// itself slow probes less aggressively and waits longer before suspecting others. Thread-safe.
/// </summary>
internal sealed class Awareness(int max)
{
    private int _score;

    public int Score => Volatile.Read(ref _score);

    public void ApplyDelta(int delta)
    {
        lock (this)
            _score = Math.Clamp(_score + delta, 0, max - 1);
    }

    /// <summary><c>timeout · (score + 1)</c>.</summary>
    public TimeSpan ScaleTimeout(TimeSpan timeout) => timeout * (Score + 1);
}
