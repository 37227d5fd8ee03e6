using UserOverlay.Control.Networks;

namespace UserOverlay.Control.State;

/// <summary>
/// Where <see cref="NetworkManager"/> keeps networks and endpoints: one call per object changed, each durable when it
/// returns, so a store can be a directory of files (<see cref="FileNetworkStore"/>), memory
/// (<see cref="InMemoryNetworkStore"/>) or a replicated log (the cluster step) that turns each call into one command.
/// <para>
/// Contract: every call either takes full effect or throws and changes nothing. The manager calls a store from one
/// thread at a time (under its lock), so implementations need not be thread-safe; the manager validates every object
/// before it is stored, so a store checks only what it needs to read its own data back.
/// </para>
/// </summary>
public interface INetworkStore
{
    /// <summary>Where the state lives, for messages (e.g. "/var/lib/useroverlay/state").</summary>
    string Location { get; }

    /// <summary>
    /// Everything stored, read once when the manager starts. Throws <see cref="ControlException"/> with
    /// <see cref="ControlErrorCodes.CorruptState"/>, naming the file or object, when the data cannot be read.
    /// </summary>
    StoredState Load();

    /// <summary>Stores a new network (networks are never changed once created).</summary>
    void PutNetwork(NetworkDefinition network);

    /// <summary>Deletes a network; the manager has deleted its endpoints before.</summary>
    void DeleteNetwork(string networkId);

    /// <summary>Stores a new endpoint of an existing network.</summary>
    void PutEndpoint(EndpointRecord endpoint);

    /// <summary>Deletes an endpoint.</summary>
    void DeleteEndpoint(string endpointId);
}

/// <summary>The contents of a store.</summary>
/// <param name="Networks">Networks, oldest first.</param>
/// <param name="Endpoints">Endpoints of those networks, oldest first.</param>
public sealed record StoredState(IReadOnlyList<NetworkDefinition> Networks, IReadOnlyList<EndpointRecord> Endpoints);
