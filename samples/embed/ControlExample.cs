using UserOverlay.Control.Ipam;
using UserOverlay.Router;

namespace UserOverlay.Samples.Embed;

/// <summary>UserOverlay.Control on its own: a network's address pool (IPAM)
/// (docs/packages/UserOverlay.Control.md shows the part between the example markers).</summary>
internal static class ControlExample
{
    public static bool Run()
    {
        // <example>
        if (!Ipv4Prefix.TryParse("198.18.0.0/29", out Ipv4Prefix subnet, out string error))
            throw new ArgumentException(error);
        // The gateway is reserved; the network and broadcast addresses are never handed out.
        Ipv4Prefix.TryParseAddress("198.18.0.1", out uint gateway);
        var pool = new AddressPool(subnet, range: null, reserved: [gateway]);
        var given = new List<uint>();
        while (pool.TryAllocateNext(out uint address))
            given.Add(address);
        Console.WriteLine($"control: {subnet} gave {given.Count} of {pool.Capacity} addresses: "
            + string.Join(", ", given.Select(VtepEndpoint.FormatAddress)));
        // </example>
        return given.Count == 5 && !given.Contains(gateway);
    }
}
