namespace UserOverlay.Router;

/// <summary>A local endpoint as a control plane advertises it.</summary>
/// <param name="Network">Network name.</param>
/// <param name="Vni">Its VNI.</param>
/// <param name="Mac">The endpoint's MAC.</param>
/// <param name="Address">Its IPv4 address (host order).</param>
/// <param name="PrefixLength">Its prefix length.</param>
public sealed record LocalEndpointInfo(string Network, uint Vni, MacAddress Mac, uint Address, int PrefixLength);
