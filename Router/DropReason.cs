namespace UserOverlay.Router;

/// <summary>
/// Why the data path dropped a frame or datagram. Every drop increments exactly one counter.
/// WARNING: only append — the names are metric label values that dashboards key on.
/// </summary>
public enum DropReason
{
    /// <summary>Shorter than a VXLAN header plus an Ethernet header, or an Ethernet frame shorter than its header.</summary>
    Truncated,
    /// <summary>VXLAN flags without the I bit (RFC 7348 §5: the VNI is not valid).</summary>
    BadVxlanFlags,
    /// <summary>A VNI this host has no network for.</summary>
    UnknownVni,
    /// <summary>VXLAN from an address that is not a peer VTEP.</summary>
    UnknownSource,
    /// <summary>An inner frame longer than the network's MTU allows, or a datagram larger than a buffer.</summary>
    Oversized,
    /// <summary>A multicast or all-zero source MAC.</summary>
    BadSourceMac,
    /// <summary>A frame from the underlay whose source MAC is one of this host's local endpoints.</summary>
    SpoofedSource,
    /// <summary>A unicast frame from the underlay for a MAC this host knows lives elsewhere.</summary>
    NotLocal,
    /// <summary>A frame with nowhere to go (no other port, no peer).</summary>
    NoDestination,
    /// <summary>A frame addressed back to the port it came from.</summary>
    Hairpin,
    /// <summary>The network's FDB or neighbour table is full; the source was not learned (the frame is still forwarded).</summary>
    LearningTableFull,
    /// <summary>The underlay refused a datagram (sendmmsg error).</summary>
    SendFailed,
    /// <summary>Writing to an endpoint's TAP failed.</summary>
    EndpointWriteFailed,
    /// <summary>An unexpected error while handling a frame (a bug: reported in the log); the router carries on.</summary>
    InternalError,
    /// <summary>Plain VXLAN for the VNI of an encrypted network: never accepted.</summary>
    PlaintextOnEncrypted,
    /// <summary>An encrypted network had no SA for the destination VTEP: the frame was not sent (never in plaintext).</summary>
    EspNoSa,
    /// <summary>The SA could not seal (sequence numbers used up or not yet durably reserved): not sent.</summary>
    EspNotSent,
    /// <summary>ESP shorter than header + ICV.</summary>
    EspTruncated,
    /// <summary>ESP whose encrypted part is not 4-byte aligned, or an IPv4 header that does not parse.</summary>
    EspMalformed,
    /// <summary>ESP with an SPI of no SA this host holds.</summary>
    EspUnknownSpi,
    /// <summary>ESP with a sequence number already received (anti-replay).</summary>
    EspReplayed,
    /// <summary>ESP with a sequence number left of the anti-replay window.</summary>
    EspTooOld,
    /// <summary>ESP whose ICV does not verify (wrong key, corruption, forgery).</summary>
    EspAuthenticationFailed,
    /// <summary>Authentic ESP with invalid padding.</summary>
    EspBadPadding,
    /// <summary>Authentic ESP that does not carry a VXLAN datagram.</summary>
    EspNotVxlan,
    /// <summary>Authentic ESP carrying a VNI that is not the SA's network (a key of one network never opens another), or from another source.</summary>
    EspWrongNetwork,
    /// <summary>A frame from an offload-capable TAP whose offload metadata does not fit it (bad checksum offsets, a super-frame that is not TCP).</summary>
    BadOffload,
    /// <summary>A frame from the underlay addressed to this network's gateway MAC, or sent from it: each host answers for its own gateway, so none ever comes from a peer.</summary>
    GatewayFromRemote,
    /// <summary>A frame a local endpoint sent to the gateway that the router does not answer (not ARP or ICMP echo for the gateway address) and no <see cref="IGatewayHandler"/> took.</summary>
    GatewayUnhandled,
}
