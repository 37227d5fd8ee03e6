namespace UserOverlay.Router;

/// <summary>A local endpoint.</summary>
/// <param name="Netns">Its namespace.</param>
/// <param name="Interface">Its TAP's name there.</param>
/// <param name="Mac">Its MAC.</param>
/// <param name="Address">Its address with prefix length.</param>
/// <param name="TapGone">True when its TAP went away under the router (the interface was deleted in the namespace): it
/// forwards nothing and waits to be detached.</param>
public sealed record EndpointStatus(string Netns, string Interface, string Mac, string Address, bool TapGone = false);
