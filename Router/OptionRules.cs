using UserOverlay.Crypto;

namespace UserOverlay.Router;

/// <summary>
/// The rules one network and one endpoint must follow, shared by <see cref="RouterOptions.Validate"/> (the start-time
/// configuration) and by <see cref="OverlayRouter.AddNetwork"/> and <see cref="OverlayRouter.AttachEndpoint"/> (run time),
/// so both give the same messages. Uniqueness among several networks or endpoints is the caller's part: the start-time
/// check names the list entry that came first, the run-time one the network or endpoint already there.
/// </summary>
internal static class OptionRules
{
    /// <summary>The fields of one network: name, VNI range, MTU, encryption and key, subnet and gateway. Paths start with <paramref name="at"/>.</summary>
    public static void CheckNetwork(RouterOptions router, NetworkOptions n, string at, List<OptionError> errors)
    {
        if (string.IsNullOrWhiteSpace(n.Name)) errors.Add(new($"{at}.Name", "is required"));
        if (n.Vni is 0 or > Constants.MaxVni) errors.Add(new($"{at}.Vni", $"{n.Vni} is out of range (a VNI is 1 to {Constants.MaxVni})"));
        int mtu = router.MtuOf(n);
        int underlayMtu = router.UnderlayMtu;
        if (mtu is < 576 or > Constants.MaxMtu) errors.Add(new($"{at}.Mtu", $"{mtu} is out of range (576 to {Constants.MaxMtu})"));
        else if (!n.Encrypted && mtu > underlayMtu - Constants.VxlanOverhead)
            errors.Add(new($"{at}.Mtu", $"{mtu} does not fit the underlay: VXLAN adds {Constants.VxlanOverhead} bytes, so an underlay MTU of {underlayMtu} allows at most {underlayMtu - Constants.VxlanOverhead}"));
        if (n.Encrypted)
        {
            if (router.Encryption is not { } enc)
                errors.Add(new($"{at}.Encrypted", "is true but Encryption is null: an encrypted network needs its key in Encryption.Keys"));
            else
            {
                if (!enc.Keys.TryGetKey(n.Name ?? "", out _))
                    errors.Add(new($"{at}.Key", $"encrypted network '{n.Name}' has no key in Encryption.Keys (a key of 16 or 32 bytes whose id is the network's name)"));
                if (mtu is >= 576 and <= Constants.MaxMtu && !EspOverhead.TryValidateInnerMtu(mtu, underlayMtu, enc.Esp.Encapsulation, out string? why))
                    errors.Add(new($"{at}.Mtu", why!));
            }
        }
        if (n.Subnet.Length > 30) errors.Add(new($"{at}.Subnet", $"{n.Subnet} is too small for endpoints (use /30 or larger)"));
        else if (n.Gateway is uint gw)
        {
            if (!n.Subnet.Contains(gw))
                errors.Add(new($"{at}.Gateway", $"{VtepEndpoint.FormatAddress(gw)} is outside the network's subnet {n.Subnet}"));
            else if (IsNetworkOrBroadcast(n.Subnet, gw))
                errors.Add(new($"{at}.Gateway", $"{VtepEndpoint.FormatAddress(gw)} is the network or broadcast address of {n.Subnet}"));
        }
    }

    /// <summary>
    /// An encrypted network's key must differ from every other encrypted network's (<paramref name="others"/>: each with
    /// the words that name it in a message, e.g. "Networks[0] ('blue')"), or one network's traffic could be injected into the other.
    /// </summary>
    public static void CheckKeyDistinct(RouterOptions router, NetworkOptions n, string at, IEnumerable<(NetworkOptions Network, string Named)> others,
        List<OptionError> errors)
    {
        // With key rings (a cluster's rotated keys), no key of one network's ring may be in another's.
        if (!n.Encrypted || router.Encryption is not { } enc || !enc.Keys.TryGetRing(n.Name ?? "", out var ring)) return;
        foreach (var (other, named) in others)
            if (other.Encrypted && enc.Keys.TryGetRing(other.Name ?? "", out var otherRing) && ring.All.Any(otherRing.Contains))
                errors.Add(new($"{at}.Key", $"is the same key as {named}: each encrypted network needs its own key, or one network's traffic could be injected into the other"));
    }

    /// <summary>
    /// The fields of one endpoint: namespace, interface name, and — when its network <paramref name="net"/> is known — its
    /// address (inside the subnet, with its prefix, not the network, broadcast or gateway address) and MAC (unicast, not
    /// the gateway's). Paths start with <paramref name="at"/>.
    /// </summary>
    public static void CheckEndpoint(EndpointOptions e, NetworkOptions? net, string at, List<OptionError> errors)
    {
        if (string.IsNullOrWhiteSpace(e.Netns)) errors.Add(new($"{at}.Netns", "is required (an `ip netns` name or a /proc/PID/ns/net path)"));
        if (!IsInterfaceName(e.Interface))
            errors.Add(new($"{at}.Interface", $"'{e.Interface}' is not a valid interface name (1 to 15 characters, no '/' or spaces)"));
        if (net is null) return;
        if (!net.Subnet.Contains(e.Address))
            errors.Add(new($"{at}.Address", $"{VtepEndpoint.FormatAddress(e.Address)} is outside network '{net.Name}' subnet {net.Subnet}"));
        else if (e.PrefixLength != net.Subnet.Length)
            errors.Add(new($"{at}.Address", $"prefix /{e.PrefixLength} differs from network '{net.Name}' subnet {net.Subnet}"));
        else if (IsNetworkOrBroadcast(net.Subnet, e.Address))
            errors.Add(new($"{at}.Address", $"{VtepEndpoint.FormatAddress(e.Address)} is the network or broadcast address of {net.Subnet}"));
        else if (net.Gateway == e.Address)
            errors.Add(new($"{at}.Address", $"{VtepEndpoint.FormatAddress(e.Address)} is the gateway address of network '{net.Name}'"));
        var mac = e.EffectiveMac;
        if (mac.IsMulticast || mac.IsZero)
            errors.Add(new($"{at}.Mac", $"{mac} is not a unicast MAC"));
        else if (net.Gateway is not null && mac == Constants.GatewayMac(net.Vni))
            errors.Add(new($"{at}.Mac", $"{mac} is the gateway MAC of network '{net.Name}' (02:75:6f followed by the VNI)"));
    }

    /// <summary>1 to 15 characters, no '/' or white space (IFNAMSIZ).</summary>
    public static bool IsInterfaceName(string? name) =>
        !string.IsNullOrEmpty(name) && name.Length <= 15 && !name.Contains('/') && !name.Any(char.IsWhiteSpace);

    private static bool IsNetworkOrBroadcast(Ipv4Prefix subnet, uint address) =>
        (address & ~subnet.Mask) == 0 || (address | subnet.Mask) == uint.MaxValue;
}
