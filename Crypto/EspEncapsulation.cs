namespace UserOverlay.Crypto;

/// <summary>How ESP travels between hosts.</summary>
public enum EspEncapsulation
{
    /// <summary>ESP directly in IP (protocol 50) in transport mode around the VXLAN UDP datagram: Docker's wire form.</summary>
    Transport = 0,

    /// <summary>ESP-in-UDP (RFC 3948), by default to port 4500: passes NAT and hosts without raw sockets.</summary>
    Udp = 1,
}
