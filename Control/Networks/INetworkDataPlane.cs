namespace UserOverlay.Control.Networks;

/// <summary>
/// What <see cref="NetworkManager"/> asks of the data plane (a running router): serve a network, create an endpoint's
/// TAP device, and undo either. Called synchronously inside the manager's operation and under its lock, one call at a
/// time; a call may block (creating a TAP enters a namespace) but should not take long.
/// <para>
/// A call that throws refuses the operation: the manager undoes what it did before (address allocation, the store
/// write) and rethrows the exception unchanged. Add and Attach must therefore leave nothing behind when they throw.
/// Remove and Detach must succeed when the thing is already gone (a namespace deleted under us), so a record can
/// always be removed; the manager also calls them to undo an Add or Attach whose store write failed.
/// </para>
/// </summary>
public interface INetworkDataPlane
{
    /// <summary>Start serving <paramref name="network"/> (its VNI, subnet, MTU, encryption).</summary>
    void AddNetwork(NetworkDefinition network);

    /// <summary>Stop serving <paramref name="network"/>; it has no endpoints left.</summary>
    void RemoveNetwork(NetworkDefinition network);

    /// <summary>Create <paramref name="endpoint"/>'s TAP device in its namespace with its address and MAC.</summary>
    void AttachEndpoint(NetworkDefinition network, EndpointRecord endpoint);

    /// <summary>Delete <paramref name="endpoint"/>'s TAP device.</summary>
    void DetachEndpoint(NetworkDefinition network, EndpointRecord endpoint);
}

/// <summary>A data plane that does nothing: for a manager that only keeps records (a cluster manager node, tests).</summary>
public sealed class NoDataPlane : INetworkDataPlane
{
    /// <summary>The instance.</summary>
    public static readonly NoDataPlane Instance = new();

    private NoDataPlane() { }

    /// <inheritdoc/>
    public void AddNetwork(NetworkDefinition network) { }

    /// <inheritdoc/>
    public void RemoveNetwork(NetworkDefinition network) { }

    /// <inheritdoc/>
    public void AttachEndpoint(NetworkDefinition network, EndpointRecord endpoint) { }

    /// <inheritdoc/>
    public void DetachEndpoint(NetworkDefinition network, EndpointRecord endpoint) { }
}
