namespace UserOverlay.Router;

/// <summary>A neighbour (IP → MAC) entry used for proxy ARP.</summary>
public sealed record NeighborStatus(string Address, string Mac, string Source, double AgeSeconds);
