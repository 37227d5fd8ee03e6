namespace UserOverlay.Crypto;

/// <summary>
/// Result of opening (authenticating, anti-replay checking, decrypting) an inbound ESP packet. Every value but
/// <see cref="Ok"/> is a drop reason with its own counter (<see cref="EspCounters.Dropped"/>).
/// </summary>
/// <remarks>WARNING: only append — the numeric values index counters and exported metrics.</remarks>
public enum EspOpenStatus
{
    /// <summary>Authentic, fresh, well-formed: the payload is decrypted in place.</summary>
    Ok = 0,

    /// <summary>Shorter than <see cref="Esp.MinPacketLength"/> (header, IV, 4 encrypted bytes, ICV).</summary>
    Truncated = 1,

    /// <summary>The encrypted part is not a multiple of 4 bytes (RFC 4303 §2.4), so no sender of ours made it.</summary>
    Malformed = 2,

    /// <summary>No inbound SA has this SPI (unknown peer, epoch outside the accepted window, or a forgery).</summary>
    UnknownSpi = 3,

    /// <summary>Sequence number already received inside the anti-replay window.</summary>
    Replayed = 4,

    /// <summary>Sequence number left of the anti-replay window (or zero, which is never sent).</summary>
    TooOld = 5,

    /// <summary>The ICV did not verify (wrong key, corrupted or forged packet). The buffer's payload is garbage afterwards.</summary>
    AuthenticationFailed = 6,

    /// <summary>Authentic, but the pad length exceeds the packet or the padding is not 1, 2, 3, … (RFC 4303 §2.4).</summary>
    BadPadding = 7,
}
