namespace UserOverlay.Router;

/// <summary>
/// Where the control plane tells the names of endpoints (a workload's name and aliases on a network), local or remote:
/// the seam between whoever knows them (the daemon for its own endpoints, the gossip agent for other hosts') and a name
/// service (the DNS responder at each network's gateway). Keyed by network and MAC, as the FDB is, so a name comes and
/// goes with the same events as its FDB entry. Every method is thread-safe and cheap; none blocks.
/// </summary>
public interface IEndpointNameSink
{
    /// <summary>
    /// The endpoint <paramref name="mac"/> of <paramref name="network"/> has <paramref name="address"/> and answers to
    /// <paramref name="names"/> (replacing what was set for it before; an empty list forgets its names).
    /// </summary>
    void SetNames(string network, MacAddress mac, uint address, IReadOnlyList<string> names);

    /// <summary>Forgets the names of the endpoint <paramref name="mac"/> of <paramref name="network"/>. False when it had none.</summary>
    bool RemoveNames(string network, MacAddress mac);
}
