namespace UserOverlay.Membership.Wire;

/// <summary>Protocol constants of memberlist as serf 0.9.x and Docker's NetworkDB speak it.</summary>
internal static class ProtocolConstants
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
