namespace UserOverlay.Membership.Wire;

/// <summary>The first byte of every memberlist message (memberlist's messageType).</summary>
// WARNING: only append — numeric values are on the wire.
internal enum MessageType : byte
{
    /// <summary>Direct probe; carries the target's name and our reply address.</summary>
    Ping = 0,
    /// <summary>Ask a peer to probe a target for us.</summary>
    IndirectPing = 1,
    /// <summary>Answer to a ping (echoes SeqNo).</summary>
    AckResp = 2,
    /// <summary>Gossip: a node is suspected to have failed.</summary>
    Suspect = 3,
    /// <summary>Gossip: a node is alive (join, refute, meta update).</summary>
    Alive = 4,
    /// <summary>Gossip: a node is dead (From == Node means it left).</summary>
    Dead = 5,
    /// <summary>TCP anti-entropy: full state exchange.</summary>
    PushPull = 6,
    /// <summary>Several messages in one datagram: count, 16-bit lengths, bodies.</summary>
    Compound = 7,
    /// <summary>An embedder's message (UDP: bytes follow; TCP: header with length then bytes).</summary>
    User = 8,
    /// <summary>Compressed payload {Algo, Buf}; Algo 0 is Go's compress/lzw (LSB, 8-bit literals).</summary>
    Compress = 9,
    /// <summary>TCP only: encrypted stream message, 32-bit length then vsn|nonce|ciphertext|tag.</summary>
    Encrypt = 10,
    /// <summary>An indirect prober's negative answer (Lifeguard).</summary>
    NackResp = 11,
    /// <summary>UDP: CRC-32/IEEE (big-endian) of the rest, then the message.</summary>
    HasCrc = 12,
    /// <summary>TCP: the remote side could not handle our stream message.</summary>
    Err = 13,
}
