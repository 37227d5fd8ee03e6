using UserOverlay.Router;

namespace UserOverlay.Control.Networks;

/// <summary>
/// Who hands out the addresses of a network whose scope is not this host's (<see cref="NetworkDefinition.Scope"/>
/// "swarm"): the cluster's IPAM, so that no address is given twice across hosts. <see cref="NetworkManager"/> asks it
/// before it attaches an endpoint to such a network and tells it after it detached one; networks of scope "local" never
/// reach it. Called under the manager's lock (one call at a time), so a call may block on the network but should be
/// bounded by a timeout of its own.
/// </summary>
public interface IAddressAuthority
{
    /// <summary>
    /// Reserves an address (and MAC) for the endpoint <paramref name="endpointId"/> about to be attached to
    /// <paramref name="network"/>: the given <paramref name="address"/> and <paramref name="mac"/> when not null, else
    /// ones the authority chooses. Throws <see cref="ControlException"/> to refuse: <see cref="ControlErrorCodes.PermissionDenied"/>
    /// (a network that takes no ad-hoc attachments), <see cref="ControlErrorCodes.Conflict"/> (the address is taken),
    /// <see cref="ControlErrorCodes.Exhausted"/>, or <see cref="ControlErrorCodes.Unavailable"/> (no manager answers).
    /// A repeated call for the same endpoint id returns the same reservation.
    /// </summary>
    AddressReservation Reserve(NetworkDefinition network, string endpointId, string name, uint? address, MacAddress? mac);

    /// <summary>
    /// Gives back the reservation of <paramref name="endpointId"/> (detached, or its attach failed after
    /// <see cref="Reserve"/>). Never throws: an authority that cannot tell its owner now remembers it and retries.
    /// </summary>
    void Release(NetworkDefinition network, string endpointId);
}

/// <summary>What <see cref="IAddressAuthority.Reserve"/> gave.</summary>
/// <param name="Address">The address (host order), inside the network's subnet.</param>
/// <param name="Mac">The endpoint's MAC.</param>
public sealed record AddressReservation(uint Address, MacAddress Mac);
