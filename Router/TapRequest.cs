namespace UserOverlay.Router;

/// <summary>What the platform needs to create one endpoint's TAP device.</summary>
/// <param name="Netns">Network namespace name or path.</param>
/// <param name="Name">Interface name inside the namespace.</param>
/// <param name="Mac">MAC address to set.</param>
/// <param name="Mtu">MTU to set.</param>
/// <param name="Address">IPv4 address (host order) to assign.</param>
/// <param name="PrefixLength">Its prefix length.</param>
/// <param name="Offload">Enable IFF_VNET_HDR with checksum and TCP segmentation offload.</param>
/// <param name="Queues">Queues to open (IFF_MULTI_QUEUE when more than one), one per pipeline worker.</param>
/// <param name="DefaultGateway">When set (host order), a default route through it on the device, unless the namespace has a default route already.</param>
public sealed record TapRequest(string Netns, string Name, MacAddress Mac, int Mtu, uint Address, int PrefixLength, bool Offload = true, int Queues = 1,
    uint? DefaultGateway = null);
