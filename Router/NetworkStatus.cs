namespace UserOverlay.Router;

/// <summary>One network's configuration, endpoints, tables and counters; <see cref="Gateway"/> and its MAC are null without a gateway.</summary>
public sealed record NetworkStatus(
    string Name,
    uint Vni,
    int Mtu,
    string Subnet,
    IReadOnlyList<EndpointStatus> Endpoints,
    IReadOnlyList<FdbEntryStatus> Fdb,
    IReadOnlyList<NeighborStatus> Neighbors,
    IReadOnlyList<string> FloodList,
    NetworkCounters Counters,
    string? Gateway = null,
    string? GatewayMac = null,
    bool Internal = false);
