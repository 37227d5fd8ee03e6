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
/// <param name="HandOff">Create the device in the router's own namespace with MAC and MTU only (no address, link down),
/// for a container runtime to move into the workload's namespace and configure there (<see cref="EndpointOptions.HandOff"/>).</param>
/// <remarks>The address's prefix gives the namespace its one route, to the subnet. No default route: the router does
/// not route or NAT beyond the network (a gateway answers ARP and ping, and later services, for itself only).</remarks>
public sealed record TapRequest(string Netns, string Name, MacAddress Mac, int Mtu, uint Address, int PrefixLength, bool Offload = true, int Queues = 1, bool HandOff = false);
