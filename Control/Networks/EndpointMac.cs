using UserOverlay.Router;

namespace UserOverlay.Control.Networks;

/// <summary>MAC addresses of endpoints.</summary>
public static class EndpointMac
{
    /// <summary>
    /// The MAC of an endpoint without <c>--mac</c>: 02:00 followed by the four octets of its IPv4 address
    /// (<paramref name="address"/>, host order), the router's own scheme (<see cref="MacAddress.FromIPv4"/>, as Docker
    /// derives 02:42:… from the address): locally administered, unicast, and unique wherever the address is, so an
    /// endpoint from the configuration file and one attached at run time get the same MAC for the same address.
    /// </summary>
    public static MacAddress FromAddress(uint address) => MacAddress.FromIPv4(VtepEndpoint.ToIPAddress(address));

    /// <summary>
    /// Parses a user's <c>--mac</c>: six hex octets, unicast (the I/G bit clear) and not all zero; otherwise throws
    /// <see cref="ControlErrorCodes.InvalidArgument"/> naming the field "mac".
    /// </summary>
    public static MacAddress ParseUnicast(string text)
    {
        if (!MacAddress.TryParse(text, out var mac))
            throw ControlException.Invalid("mac", $"'{text}' is not a MAC address (expected six hex octets like 02:00:c6:12:00:05)");
        if (mac.IsMulticast || mac.IsZero)
            throw ControlException.Invalid("mac", $"{mac} is not a unicast address (the first octet's lowest bit must be 0, and it must not be all zero)");
        return mac;
    }
}
