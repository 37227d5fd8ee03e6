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
    /// <summary>Inner MTU of the endpoints' interfaces; null for the default (see <see cref="RouterOptions.MtuOf"/>: 1450, or 1408 encrypted with ESP-in-UDP, 1416 in transport mode).</summary>
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
    /// <see cref="OverlayRouter.GatewayHandler"/>. Endpoints get no default route through it: nothing here routes or
    /// NATs beyond the network.
    /// </summary>
    public uint? Gateway { get; init; }

    /// <summary>
    /// Docker's <c>--internal</c>: no way out of the network. Recorded and reported (status, inspect); since the router
    /// gives no network a way out (no default route, no NAT), internal and external networks forward alike today.
    /// </summary>
    public bool Internal { get; init; }
}
