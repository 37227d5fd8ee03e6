namespace UserOverlay.Membership;

/// <summary>Why an incoming message was dropped. Each has a counter (<see cref="Memberlist.Drops"/>).</summary>
// WARNING: only append — values index the counter array and appear in metrics.
public enum DropReason
{
    /// <summary>Ended before its declared contents (truncated datagram, compound, msgpack or stream).</summary>
    Truncated = 0,
    /// <summary>Not a well-formed message (bad msgpack, wrong field types, invalid values).</summary>
    Malformed = 1,
    /// <summary>A message type we do not handle in that place.</summary>
    UnknownMessageType = 2,
    /// <summary>hasCrc checksum mismatch.</summary>
    BadChecksum = 3,
    /// <summary>No installed key authenticates it (wrong key, tampered).</summary>
    DecryptionFailed = 4,
    /// <summary>Plaintext while a keyring is set and incoming verification is on.</summary>
    NotEncrypted = 5,
    /// <summary>Encrypted while we have no keyring.</summary>
    EncryptedWithoutKey = 6,
    /// <summary>Larger than we accept (datagram, stream, decompressed size, node meta, node count).</summary>
    Oversized = 7,
    /// <summary>compress with an unknown algorithm or an invalid LZW stream.</summary>
    DecompressionFailed = 8,
    /// <summary>A ping addressed to another node name.</summary>
    WrongNode = 9,
    /// <summary>Handoff queue full (too much gossip to process).</summary>
    QueueFull = 10,
    /// <summary>Too many concurrent inbound push/pulls.</summary>
    TooManyPushPulls = 11,
    /// <summary>A push/pull from a member whose protocol versions are incompatible with the cluster.</summary>
    IncompatibleProtocol = 12,
    /// <summary>An ack or nack whose probe is no longer waiting (late or unknown sequence number).</summary>
    UnexpectedAck = 13,
    /// <summary>Nesting of compound/compress beyond what memberlist produces.</summary>
    TooDeep = 14,
    /// <summary>An alive message with an invalid address or versions.</summary>
    InvalidAlive = 15,
}
