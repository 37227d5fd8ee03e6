namespace UserOverlay.Membership.Wire;

/// <summary>The first byte of every memberlist message (memberlist's messageType).</summary>
// WARNING: only append — numeric values are on the wire.
public enum MessageType : byte
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

/// <summary>Protocol constants of memberlist as serf 0.9.x and Docker's NetworkDB speak it.</summary>
public static class ProtocolConstants
{
    // Specification constants (memberlist wire facts)

    /// <summary>Lowest memberlist protocol version we understand.</summary>
    public const byte ProtocolVersionMin = 1;
    /// <summary>Highest memberlist protocol version we understand (advertised in Vsn).</summary>
    public const byte ProtocolVersionMax = 5;
    /// <summary>The version we speak: 2, as serf (protocol 5 → memberlist 2) and Docker (ProtocolVersion2Compatible).</summary>
    public const byte ProtocolVersionCurrent = 2;
    /// <summary>Largest node meta memberlist accepts (MetaMaxSize).</summary>
    public const int MetaMaxSize = 512;
    /// <summary>Gossip port of Docker's overlay and serf.</summary>
    public const int DefaultPort = 7946;
    /// <summary>Compound header: type byte + count byte.</summary>
    public const int CompoundHeaderOverhead = 2;
    /// <summary>Per-part overhead inside a compound: a 16-bit length.</summary>
    public const int CompoundOverhead = 2;
    /// <summary>Type byte in front of a user message.</summary>
    public const int UserMsgOverhead = 1;
    /// <summary>Largest push/pull state memberlist reads (maxPushStateBytes).</summary>
    public const int MaxPushStateBytes = 20 * 1024 * 1024;
    /// <summary>Concurrent inbound push/pulls before new ones are refused (maxPushPullRequests).</summary>
    public const int MaxPushPullRequests = 128;

    // Implementation constants

    /// <summary>Largest datagram we accept.</summary>
    public const int MaxPacketSize = 65536;
    /// <summary>Largest number of node states we accept in one push/pull.</summary>
    public const int MaxPushPullNodes = 100_000;
    /// <summary>Largest decompressed payload we accept (defends against LZW bombs).</summary>
    public const int MaxDecompressedSize = MaxPushStateBytes;
}
