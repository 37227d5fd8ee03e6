using UserOverlay.Crypto;

namespace UserOverlay.Router;

/// <summary>Keys and ESP settings of a router's encrypted networks.</summary>
public sealed record EncryptionOptions
{
    /// <summary>Key material; the key of a network has the network's name as its id. A cluster-fed source can replace a file-fed one.</summary>
    public required INetworkKeySource Keys { get; init; }

    /// <summary>
    /// ESP settings shared by every encrypted network of the host: rekey interval, wire form (transport on IP protocol 50,
    /// or ESP-in-UDP on <see cref="EspOptions.UdpPort"/>), and the durable sequence store (required).
    /// </summary>
    public EspOptions Esp { get; init; } = new();
}
