using System.Net.NetworkInformation;
using UserOverlay.Control.Networks;
using UserOverlay.Router;
using UserOverlay.Router.Netns;

namespace UserOverlay.Cli.Daemon;

/// <summary>
/// One endpoint with what a runtime's plugin reports about it (<c>GET /v1/networks/{network}/endpoints/{endpoint}</c>):
/// the endpoint (<see cref="EndpointView"/>'s fields), its network's gateway, subnet and effective MTU, and what its
/// namespace holds now — the interface's MAC there, or null when the namespace or the interface is gone.
/// </summary>
public sealed record EndpointDetail(string Id, string Network, string NetworkId, string Name, string Netns, string Interface,
    string MacAddress, string Ipv4Address, IReadOnlyList<string> Aliases, string Subnet, string? Gateway, int Mtu, bool Internal,
    bool NetnsPresent, string? InterfaceMac);

/// <summary>The endpoint queries of the control API (the CNI plugin's CHECK and GC read them).</summary>
internal static class EndpointQueries
{
    /// <summary>The endpoints of a network, by name.</summary>
    public static IReadOnlyList<EndpointView> List(NetworkManager manager, string network)
    {
        var def = manager.GetNetwork(network);
        return [.. manager.GetEndpoints(def.Id).OrderBy(e => e.Name, StringComparer.Ordinal).Select(e => EndpointView.From(def, e))];
    }

    /// <summary>
    /// One endpoint of a network, found by its id or name; not_found otherwise. Looks into its namespace for the
    /// interface (a short-lived thread enters it).
    /// </summary>
    public static EndpointDetail Detail(NetworkManager manager, OverlayRouter router, string network, string endpoint)
    {
        var def = manager.GetNetwork(network);
        var eps = manager.GetEndpoints(def.Id);
        var e = eps.FirstOrDefault(x => x.Id == endpoint) ?? eps.FirstOrDefault(x => x.Name == endpoint)
            ?? throw new ControlException(ControlErrorCodes.NotFound, $"endpoint: '{ControlNames.Printable(endpoint)}' is not an endpoint of network '{def.Name}'", "endpoint");
        var view = EndpointView.From(def, e);
        bool present = Namespaces.Exists(e.Netns);
        string? mac = null;
        if (present)
        {
            try { mac = Namespaces.RunIn(e.Netns, () => MacOf(e.Interface)); }
            catch (RouterException) { present = Namespaces.Exists(e.Netns); }
        }
        return new EndpointDetail(view.Id, view.Network, view.NetworkId, view.Name, view.Netns, view.Interface, view.MacAddress, view.Ipv4Address,
            view.Aliases, def.Subnet.ToString(), def.Gateway is uint g ? VtepEndpoint.FormatAddress(g) : null,
            router.Options.MtuOf(def.ToNetworkOptions()), def.Internal, present, mac);
    }

    // The MAC of the interface named so in this thread's namespace, as aa:bb:cc:dd:ee:ff; null when there is none.
    private static string? MacOf(string name)
    {
        foreach (var nic in NetworkInterface.GetAllNetworkInterfaces())
            if (nic.Name == name)
                return string.Join(':', nic.GetPhysicalAddress().GetAddressBytes().Select(b => b.ToString("x2", System.Globalization.CultureInfo.InvariantCulture)));
        return null;
    }
}
