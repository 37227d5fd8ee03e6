namespace UserOverlay.Crypto;

/// <summary>Outcome of a replay check.</summary>
public enum ReplayCheck
{
    /// <summary>Not seen and inside (or right of) the window: may be accepted once authenticated.</summary>
    Fresh = 0,

    /// <summary>Inside the window and already accepted.</summary>
    Replayed = 1,

    /// <summary>Left of the window (or zero, which is never sent): cannot be checked any more, so it is rejected.</summary>
    TooOld = 2,
}
