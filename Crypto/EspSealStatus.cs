namespace UserOverlay.Crypto;

/// <summary>Result of sealing an outbound packet. Every value but <see cref="Ok"/> means: do not send, count it.</summary>
/// <remarks>WARNING: only append — the numeric values index counters and exported metrics.</remarks>
public enum EspSealStatus
{
    /// <summary>Sealed; send the ESP packet.</summary>
    Ok = 0,

    /// <summary>No SA for this peer (no key, peer not added, removed, or every allowed epoch used up). Nothing is written.</summary>
    NoSa = 1,

    /// <summary>The SA's sequence numbers are used up (2^32 − 1 without ESN); rotation installs the next epoch.</summary>
    SequenceExhausted = 2,

    /// <summary>The next block of sequence numbers is not durably reserved yet (see <see cref="ISequenceStore"/>).</summary>
    AwaitingReservation = 3,
}
