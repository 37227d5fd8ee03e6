namespace UserOverlay.Crypto;

/// <summary>
/// ESP wire constants (RFC 4303, RFC 4106, RFC 3948) and the buffer geometry the router needs:
/// <see cref="HeaderLength"/> bytes of headroom before the payload and <see cref="MaxTrailerLength"/>
/// bytes of tailroom after it.
/// </summary>
/// <remarks>
/// Wire layout of one packet sealed by this library (transport mode; for ESP-in-UDP a UDP header to
/// port 4500 precedes it):
/// <code>
///  0               4               8                              16
///  +---------------+---------------+-------------------------------+
///  |      SPI      |  Sequence (low 32 bits)  |  IV (8 bytes)      |   ← HeaderLength = 16
///  +---------------+---------------+-------------------------------+
///  |  payload (the UDP datagram: UDP 8 | VXLAN 8 | Ethernet frame) |   ← encrypted
///  |  ... | padding 0..3 | pad length | next header (17)           |   ← encrypted trailer
///  +---------------------------------------------------------------+
///  |                         ICV (16 bytes)                        |
///  +---------------------------------------------------------------+
/// </code>
/// </remarks>
public static class Esp
{
    // Specification constants

    /// <summary>IP protocol number of ESP (RFC 4303 §2, IANA).</summary>
    public const int IpProtocol = 50;

    /// <summary>UDP port of ESP-in-UDP (RFC 3948 §2.1, the IKE NAT-T port).</summary>
    public const int NatTraversalPort = 4500;

    /// <summary>SPI (4) + sequence number (4): the fixed ESP header (RFC 4303 §2).</summary>
    public const int BaseHeaderLength = 8;

    /// <summary>Explicit IV carried in every packet for AES-GCM (RFC 4106 §3.1).</summary>
    public const int IvLength = 8;

    /// <summary>ESP header + IV: the headroom <see cref="OutboundSa.Seal"/> writes before the payload.</summary>
    public const int HeaderLength = BaseHeaderLength + IvLength;

    /// <summary>Salt: the implicit first 4 bytes of the 12-byte GCM nonce (RFC 4106 §4).</summary>
    public const int SaltLength = 4;

    /// <summary>GCM nonce = salt (4) ‖ IV (8) (RFC 4106 §4).</summary>
    public const int NonceLength = SaltLength + IvLength;

    /// <summary>ICV: the full 16-byte GCM tag (RFC 4106 §6: the 16-octet ICV MUST be supported).</summary>
    public const int IcvLength = 16;

    /// <summary>Pad length (1) + next header (1) (RFC 4303 §2.4, §2.6).</summary>
    public const int TrailerLength = 2;

    /// <summary>
    /// Most padding this library writes: the encrypted part (payload ‖ padding ‖ pad length ‖ next header)
    /// must end on a 4-byte boundary (RFC 4303 §2.4); GCM needs no block padding, so 0..3 bytes suffice.
    /// Received packets may carry up to 255 bytes of padding (checked, not required to be minimal).
    /// </summary>
    public const int MaxPadLength = 3;

    /// <summary>Tailroom <see cref="OutboundSa.Seal"/> needs after the payload: padding 3 + trailer 2 + ICV 16 = 21.</summary>
    public const int MaxTrailerLength = MaxPadLength + TrailerLength + IcvLength;

    /// <summary>Shortest packet that can be valid: header 16 + smallest 4-aligned encrypted part 4 + ICV 16.</summary>
    public const int MinPacketLength = HeaderLength + 4 + IcvLength;

    /// <summary>Next header value for UDP (IANA protocol 17): what the router seals (the VXLAN datagram).</summary>
    public const byte NextHeaderUdp = 17;

    /// <summary>Next header 59 "no next header": a dummy packet (RFC 4303 §2.6) — the receiver discards it.</summary>
    public const byte NextHeaderNone = 59;

    /// <summary>Algorithm name as Linux XFRM spells it (ip xfrm state): AES-GCM with a 16-byte ICV.</summary>
    public const string AlgorithmName = "rfc4106(gcm(aes))";

    /// <summary>The same algorithm as Wireshark's ESP SA table (esp_sa UAT) names it.</summary>
    public const string WiresharkAlgorithmName = "AES-GCM with 16 octet ICV [RFC4106]";

    /// <summary>
    /// Anti-replay window in packets (RFC 4303 §3.4.3 asks for at least 32, 64 recommended; this one holds 4032).
    /// The bitmap has <see cref="ReplayWindow.RingBlocks"/> blocks of 64 bits; one block is kept free so the window
    /// can slide by whole blocks without losing state (wireguard-go's replay.go layout).
    /// </summary>
    public const int ReplayWindowSize = ReplayWindow.WindowSize;

    /// <summary>Highest sequence number of an SA without extended sequence numbers; it must never wrap (RFC 4303 §3.3.3).</summary>
    public const ulong MaxSequence32 = uint.MaxValue;

    // Implementation constants

    /// <summary>Default rekey threshold without ESN: rotate to the next epoch once half the 32-bit space is used.</summary>
    public const ulong DefaultRekeyAfterPackets32 = 1UL << 31;

    /// <summary>Default rekey threshold with ESN (the 64-bit space is not a practical limit; rotation is by time).</summary>
    public const ulong DefaultRekeyAfterPackets64 = 1UL << 62;

    /// <summary>First SPI value not reserved by IANA (RFC 4303 §2.1: 1..255 are reserved, 0 is local-only).</summary>
    public const uint MinSpi = 256;

    /// <summary>Bytes of ESP header from the start of the ESP packet when the payload starts at <paramref name="payloadOffset"/>.</summary>
    public static int PacketStart(int payloadOffset) => payloadOffset - HeaderLength;

    /// <summary>Padding bytes <see cref="OutboundSa.Seal"/> adds to a payload of <paramref name="payloadLength"/> bytes (0..3).</summary>
    public static int PadLength(int payloadLength) => (4 - ((payloadLength + TrailerLength) & 3)) & 3;

    /// <summary>Length of the sealed ESP packet (header, IV, ciphertext, trailer, ICV) for a payload of this length.</summary>
    public static int SealedLength(int payloadLength) =>
        HeaderLength + payloadLength + PadLength(payloadLength) + TrailerLength + IcvLength;
}
