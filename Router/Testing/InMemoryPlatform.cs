using System.Collections.Concurrent;

namespace UserOverlay.Router.Testing;

/// <summary>
/// A platform made of test doubles: <see cref="ChannelTap"/>s (looked up by namespace and name
/// with <see cref="Tap"/>) and underlays on one <see cref="InMemoryUnderlayNetwork"/>.
/// </summary>
public sealed class InMemoryPlatform(InMemoryUnderlayNetwork network) : IRouterPlatform
{
    private readonly ConcurrentDictionary<(string Netns, string Name), ChannelTap> _taps = new();

    /// <summary>The underlay network the platform's underlays attach to.</summary>
    public InMemoryUnderlayNetwork Network { get; } = network;

    /// <summary>The last underlay this platform opened.</summary>
    public InMemoryUnderlay? Underlay { get; private set; }

    public ITapDevice CreateTap(TapRequest request)
    {
        var tap = new ChannelTap(request.Name);
        _taps[(request.Netns, request.Name)] = tap;
        return tap;
    }

    public IUnderlay OpenUnderlay(VtepEndpoint local, int batchSize) => Underlay = Network.Attach(local);

    /// <summary>The last ESP underlay this platform opened (attached at port 0 for transport mode, else the ESP-in-UDP port).</summary>
    public InMemoryUnderlay? EspUnderlay { get; private set; }

    public IUnderlay OpenEspUnderlay(VtepEndpoint local, int udpPort, int batchSize) =>
        EspUnderlay = Network.Attach(local with { Port = (ushort)udpPort });

    /// <summary>The TAP created for an endpoint.</summary>
    public ChannelTap Tap(string netns, string name = "eth0") => _taps[(netns, name)];
}
