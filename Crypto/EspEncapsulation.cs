namespace UserOverlay.Crypto;

/// <summary>How ESP travels between hosts.</summary>
public enum EspEncapsulation
{
    /// <summary>ESP directly in IP (protocol 50) in transport mode around the VXLAN UDP datagram: Docker's wire form, for a
    /// peer that expects it (a kernel-IPsec host). Raw IP sockets: no GSO or GRO. The enum's zero value, but not the
    /// default of <see cref="EspOptions.Encapsulation"/> (<see cref="EspOptions.DefaultEncapsulation"/>).</summary>
    Transport = 0,

    /// <summary>ESP-in-UDP (RFC 3948), by default to port 4500, and the default form (<see cref="EspOptions.DefaultEncapsulation"/>):
    /// UDP GSO and GRO, passes NAT and networks that drop protocol 50, and needs no raw sockets.</summary>
    Udp = 1,
}
