namespace UserOverlay.Router;

/// <summary>A static FDB entry: <see cref="Mac"/> on <see cref="Network"/> lives behind <see cref="Vtep"/>.</summary>
public sealed record StaticFdbEntry
{
    public required string Network { get; init; }
    public required MacAddress Mac { get; init; }
    public required VtepEndpoint Vtep { get; init; }
    /// <summary>Optional IPv4 address (host order) of that MAC, so ARP for it is answered locally.</summary>
    public uint? Address { get; init; }
}
