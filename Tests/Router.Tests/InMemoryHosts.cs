using UserOverlay.Router.Testing;

namespace UserOverlay.Router.Tests;

/// <summary>Routers on in-memory doubles (wireguard-go's genTestPair, for N hosts): real pipeline threads, no kernel.</summary>
public sealed class InMemoryHosts : IDisposable
{
    public readonly InMemoryUnderlayNetwork Underlay = new();
    private readonly List<(OverlayRouter Router, InMemoryPlatform Platform)> _hosts = [];

    public static VtepEndpoint Vtep(int i) => new(0xC000_0200u + (uint)i, 4789); // 192.0.2.i:4789

    public static uint Ip(string dotted) => Ipv4Prefix.TryParseAddress(dotted, out uint a) ? a : throw new ArgumentException(dotted);

    public static readonly NetworkOptions Blue = new() { Name = "blue", Vni = 4097, Subnet = new Ipv4Prefix(Ip("198.18.0.0"), 24) };
    public static readonly NetworkOptions Red = new() { Name = "red", Vni = 4098, Subnet = new Ipv4Prefix(Ip("198.18.0.0"), 24) };

    public static EndpointOptions Endpoint(string network, string netns, string address) =>
        new() { Network = network, Netns = netns, Address = Ip(address), PrefixLength = 24 };

    public (OverlayRouter Router, InMemoryPlatform Platform) Add(int host, int[] peers, NetworkOptions[] networks, EndpointOptions[] endpoints,
        Func<RouterOptions, RouterOptions>? tweak = null)
    {
        var options = new RouterOptions
        {
            Underlay = Vtep(host),
            Peers = peers.Select(Vtep).ToList(),
            Networks = networks,
            Endpoints = endpoints,
        };
        if (tweak is not null) options = tweak(options);
        var platform = new InMemoryPlatform(Underlay);
        var router = OverlayRouter.Start(options, platform);
        platform.Underlay!.RecordSent = true;
        if (platform.EspUnderlay is { } esp) esp.RecordSent = true;
        _hosts.Add((router, platform));
        return (router, platform);
    }

    public void Dispose()
    {
        foreach (var (r, _) in _hosts) r.Dispose();
    }
}

internal static class StatusExtensions
{
    public static NetworkStatus Net(this RouterStatus s, string name) => s.Networks.Single(n => n.Name == name);
    public static long Drop(this RouterStatus s, string network, string reason) => s.Net(network).Counters.Drops[reason];
    public static long GlobalDrop(this RouterStatus s, string reason) => s.Drops[reason];
}
