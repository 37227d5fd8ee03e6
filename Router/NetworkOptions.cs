namespace UserOverlay.Router;

/// <summary>One overlay network: a VXLAN VNI with its subnet, inner MTU and optional gateway.</summary>
public sealed record NetworkOptions
{
    /// <summary>Name, unique on the host (e.g. "blue").</summary>
    public required string Name { get; init; }
    /// <summary>VXLAN network identifier, 1 to 16777215, unique on the host.</summary>
    public required uint Vni { get; init; }
    /// <summary>The overlay subnet; endpoint addresses must lie inside it.</summary>
    public required Ipv4Prefix Subnet { get; init; }
    /// <summary>Inner MTU of the endpoints' interfaces; null for the default (see <see cref="RouterOptions.MtuOf"/>: 1450, or 1416 encrypted).</summary>
    public int? Mtu { get; init; }

    /// <summary>
    /// Carry this network only as ESP (AES-GCM) between hosts, never as plain VXLAN: frames without an SA are not
    /// sent, and plain VXLAN arriving for its VNI is dropped. The key is <c>RouterOptions.Encryption.Keys</c>'s key
    /// whose id is this network's <see cref="Name"/>.
    /// </summary>
    public bool Encrypted { get; init; }

    /// <summary>
    /// The gateway's IPv4 address (host order), or null for none: inside <see cref="Subnet"/>, not its network or broadcast
    /// address, and no endpoint's. Each host's router answers ARP and ICMP echo for it to its own local endpoints, with the
    /// MAC <see cref="Constants.GatewayMac"/> gives (never carried between hosts); other frames for it go to
    /// <see cref="OverlayRouter.GatewayHandler"/>. An endpoint of a network that is not <see cref="Internal"/> gets a
    /// default route through it (unless its namespace already has one).
    /// </summary>
    public uint? Gateway { get; init; }

    /// <summary>No route to the outside (Docker's <c>--internal</c>): its endpoints get no default route through the gateway.</summary>
    public bool Internal { get; init; }
}
