namespace UserOverlay.Router;

/// <summary>A local endpoint.</summary>
public sealed record EndpointStatus(string Netns, string Interface, string Mac, string Address);
