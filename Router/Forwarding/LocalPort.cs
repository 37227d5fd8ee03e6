namespace UserOverlay.Router.Forwarding;

/// <summary>
/// A local endpoint's port on a network: its TAP device and identity. Created when the endpoint
/// is attached; immutable afterwards.
/// </summary>
internal sealed class LocalPort(int id, NetworkState network, EndpointOptions options, ITapDevice tap)
{
    public readonly int Id = id;
    public readonly NetworkState Network = network;
    public readonly EndpointOptions Options = options;
    public readonly ulong Mac = options.EffectiveMac.Value;
    public readonly uint Address = options.Address;
    public readonly ITapDevice Tap = tap;
}
