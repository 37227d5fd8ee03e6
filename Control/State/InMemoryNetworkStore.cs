using UserOverlay.Control.Networks;

namespace UserOverlay.Control.State;

/// <summary>
/// A store that keeps nothing across restarts: for tests, and for embedders whose networks come from elsewhere.
/// Optionally fails on demand (<see cref="FailNextWrite"/>) so tests can check that the manager undoes an operation
/// whose store write fails. Not thread-safe (see <see cref="INetworkStore"/>).
/// </summary>
public sealed class InMemoryNetworkStore : INetworkStore
{
    private readonly Dictionary<string, NetworkDefinition> _networks = new(StringComparer.Ordinal);
    private readonly Dictionary<string, EndpointRecord> _endpoints = new(StringComparer.Ordinal);

    /// <summary>A store holding <paramref name="initial"/> (e.g. to test start-up), or empty.</summary>
    public InMemoryNetworkStore(StoredState? initial = null)
    {
        foreach (var n in initial?.Networks ?? []) _networks.Add(n.Id, n);
        foreach (var e in initial?.Endpoints ?? []) _endpoints.Add(e.Id, e);
    }

    /// <summary>When set, the next Put or Delete throws <see cref="IOException"/> and changes nothing, then this is cleared.</summary>
    public bool FailNextWrite { get; set; }

    /// <summary>The networks stored now.</summary>
    public IReadOnlyCollection<NetworkDefinition> Networks => _networks.Values;

    /// <summary>The endpoints stored now.</summary>
    public IReadOnlyCollection<EndpointRecord> Endpoints => _endpoints.Values;

    /// <inheritdoc/>
    public string Location => "memory";

    /// <inheritdoc/>
    public StoredState Load() =>
        new([.. _networks.Values.OrderBy(n => n.Created)], [.. _endpoints.Values.OrderBy(e => e.Created)]);

    /// <inheritdoc/>
    public void PutNetwork(NetworkDefinition network) { Write(); _networks[network.Id] = network; }

    /// <inheritdoc/>
    public void DeleteNetwork(string networkId) { Write(); _networks.Remove(networkId); }

    /// <inheritdoc/>
    public void PutEndpoint(EndpointRecord endpoint) { Write(); _endpoints[endpoint.Id] = endpoint; }

    /// <inheritdoc/>
    public void DeleteEndpoint(string endpointId) { Write(); _endpoints.Remove(endpointId); }

    private void Write()
    {
        if (!FailNextWrite) return;
        FailNextWrite = false;
        throw new IOException("the in-memory store was told to fail this write");
    }
}
