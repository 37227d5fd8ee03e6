using UserOverlay.Crypto;

namespace UserOverlay.Router;

/// <summary>Keys and ESP settings of a router's encrypted networks.</summary>
public sealed record EncryptionOptions
{
    /// <summary>
    /// Key material; the key of a network has the network's name as its id. A configuration's keys come as a
    /// <see cref="StaticNetworkKeySource"/> (one key per network); a cluster's control plane passes a
    /// <see cref="MutableNetworkKeySource"/> and changes its rings while the router runs: the router's ESP timer (every
    /// 500 ms) applies a change at its next tick: it seals with the ring's primary and opens with every key of the ring,
    /// keeping the SAs of keys that stay. A network's ring must be set before the network is added.
    /// </summary>
    public required INetworkKeySource Keys { get; init; }

    /// <summary>
    /// ESP settings shared by every encrypted network of the host: rekey interval, wire form (ESP-in-UDP on
    /// <see cref="EspOptions.UdpPort"/> by default, or transport on IP protocol 50), and the durable sequence store (required).
    /// </summary>
    public EspOptions Esp { get; init; } = new();
}
