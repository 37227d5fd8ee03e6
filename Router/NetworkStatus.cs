namespace UserOverlay.Router;

/// <summary>One network's configuration, endpoints, tables and counters.</summary>
public sealed record NetworkStatus(
    string Name,
    uint Vni,
    int Mtu,
    string Subnet,
    IReadOnlyList<EndpointStatus> Endpoints,
    IReadOnlyList<FdbEntryStatus> Fdb,
    IReadOnlyList<NeighborStatus> Neighbors,
    IReadOnlyList<string> FloodList,
    NetworkCounters Counters);
