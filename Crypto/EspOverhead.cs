namespace UserOverlay.Crypto;

/// <summary>
/// How much ESP adds to a VXLAN datagram, and the inner MTU an encrypted network can carry.
/// </summary>
/// <remarks>
/// Plain VXLAN over IPv4 costs <see cref="VxlanOverhead"/> = 50 bytes (outer IPv4 20 + UDP 8 + VXLAN 8 + inner
/// Ethernet 14), so a 1500-byte underlay carries a 1450-byte inner MTU. Transport-mode ESP wraps the UDP datagram:
/// <code>
/// IPv4 20 | ESP 8 | IV 8 | UDP 8 | VXLAN 8 | Ethernet 14 | inner packet (MTU) | pad 0..3 | pad len 1 | next hdr 1 | ICV 16
/// </code>
/// ESP-in-UDP adds a UDP header (8) after the IPv4 header. Docker's kernel ESP uses an 8-byte ICV and gets 1424;
/// with the 16-byte ICV here, <see cref="InnerMtu"/> gives 1416 (transport) and 1408 (ESP-in-UDP) for a 1500 underlay.
/// </remarks>
public static class EspOverhead
{
    /// <summary>Outer IPv4 20 + UDP 8 + VXLAN 8 + inner Ethernet header 14: what plain VXLAN costs.</summary>
    public const int VxlanOverhead = 50;

    /// <summary>UDP 8 + VXLAN 8 + inner Ethernet 14: the headers inside the ESP payload, before the inner packet.</summary>
    public const int EncapsulatedHeaders = 30;

    /// <summary>Outer IPv4 header without options.</summary>
    public const int IPv4HeaderLength = 20;

    /// <summary>UDP header (ESP-in-UDP).</summary>
    public const int UdpHeaderLength = 8;

    /// <summary>
    /// Worst-case bytes ESP adds to one VXLAN datagram:
    /// padding to 4-byte alignment (at most <see cref="Esp.MaxPadLength"/> = 3)
    /// + ESP header (SPI 4 + sequence 4 = 8) + IV 8 + trailer (pad length 1 + next header 1 = 2) + ICV 16
    /// = 37, plus the UDP header (8) = 45 for ESP-in-UDP.
    /// Inner MTU ≥ underlay MTU − <see cref="VxlanOverhead"/> − this always fits (1413 for 1500); <see cref="InnerMtu"/>
    /// is exact and up to 3 bytes larger, because padding depends only on the length, which it accounts for.
    /// </summary>
    public static int WorstCase(EspEncapsulation encapsulation) =>
        Esp.MaxPadLength + Esp.BaseHeaderLength + Esp.IvLength + Esp.TrailerLength + Esp.IcvLength
        + (encapsulation == EspEncapsulation.Udp ? UdpHeaderLength : 0);

    /// <summary>
    /// Largest inner MTU (bytes of the inner IP packet) whose every frame, sealed, fits in <paramref name="underlayMtu"/>:
    /// budget = underlay − outer IP − (UDP 8 for ESP-in-UDP) − ESP header 8 − IV 8 − ICV 16; the encrypted part
    /// (UDP 8 + VXLAN 8 + Ethernet 14 + inner + pad + 2) must be a multiple of 4 and ≤ budget, so
    /// inner = ⌊budget / 4⌋ × 4 − 2 − 30. Sealed size grows monotonically with the inner length, so every shorter
    /// frame fits too. Returns ≤ 0 if nothing fits.
    /// </summary>
    public static int InnerMtu(int underlayMtu, EspEncapsulation encapsulation, int outerIpHeaderLength = IPv4HeaderLength)
    {
        int budget = underlayMtu - outerIpHeaderLength - (encapsulation == EspEncapsulation.Udp ? UdpHeaderLength : 0)
                     - Esp.BaseHeaderLength - Esp.IvLength - Esp.IcvLength;
        int encrypted = budget & ~3;
        return encrypted - Esp.TrailerLength - EncapsulatedHeaders;
    }

    /// <summary>
    /// Checks a configured inner MTU of an encrypted network. False with a sentence a person can act on when a
    /// full-size frame would not fit the underlay once sealed.
    /// </summary>
    public static bool TryValidateInnerMtu(int configuredMtu, int underlayMtu, EspEncapsulation encapsulation, out string? error,
        int outerIpHeaderLength = IPv4HeaderLength)
    {
        int max = InnerMtu(underlayMtu, encapsulation, outerIpHeaderLength);
        if (configuredMtu <= max)
        {
            error = null;
            return true;
        }
        int sealedSize = outerIpHeaderLength + (encapsulation == EspEncapsulation.Udp ? UdpHeaderLength : 0)
                         + Esp.SealedLength(configuredMtu + EncapsulatedHeaders);
        error = $"mtu {configuredMtu} does not fit an encrypted network on a {underlayMtu}-byte underlay: a full frame becomes a " +
                $"{sealedSize}-byte packet ({EncapsulatedHeaders} bytes of UDP/VXLAN/Ethernet headers plus ESP header, IV, " +
                $"padding, trailer and a 16-byte ICV{(encapsulation == EspEncapsulation.Udp ? ", plus 8 for ESP-in-UDP" : "")}); " +
                $"use mtu {max} or less, or leave mtu unset to get {max}.";
        return false;
    }
}
