using UserOverlay.Router;

namespace UserOverlay.Control.Networks;

/// <summary>MAC addresses of endpoints.</summary>
public static class EndpointMac
{
    /// <summary>
    /// Docker's MAC for an endpoint without <c>--mac</c>: 02:42 followed by the four octets of its IPv4 address
    /// (<paramref name="address"/>, host order): locally administered, unicast, and unique wherever the address is.
    /// </summary>
    public static MacAddress FromAddress(uint address) => new(0x0242_0000_0000UL | address);

    /// <summary>
    /// Parses a user's <c>--mac</c>: six hex octets, unicast (the I/G bit clear) and not all zero; otherwise throws
    /// <see cref="ControlErrorCodes.InvalidArgument"/> naming the field "mac".
    /// </summary>
    public static MacAddress ParseUnicast(string text)
    {
        if (!MacAddress.TryParse(text, out var mac))
            throw ControlException.Invalid("mac", $"'{text}' is not a MAC address (expected six hex octets like 02:42:c6:12:00:05)");
        if (mac.IsMulticast || mac.IsZero)
            throw ControlException.Invalid("mac", $"{mac} is not a unicast address (the first octet's lowest bit must be 0, and it must not be all zero)");
        return mac;
    }
}
