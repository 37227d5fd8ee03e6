namespace UserOverlay.Control.Networks;

/// <summary>
/// <c>network create</c> as the user typed it: addresses are strings so that <see cref="NetworkValidator"/> can name
/// the field of a malformed one. Field names in errors are the CLI's flag names (subnet, gateway, ip-range, …).
/// </summary>
public sealed record NetworkCreateRequest
{
    /// <summary>The new network's name: letters, digits, '_', '.', '-', starting with a letter or digit, at most 64.</summary>
    public required string Name { get; init; }

    /// <summary>The driver; null or "overlay".</summary>
    public string? Driver { get; init; }

    /// <summary>IPv4 CIDR; null to take one from <see cref="NetworkManagerOptions.DefaultAddressPools"/>.</summary>
    public string? Subnet { get; init; }

    /// <summary>Gateway address inside the subnet; null for the subnet's first usable address (unless <see cref="NoGateway"/>).</summary>
    public string? Gateway { get; init; }

    /// <summary>No gateway at all (a configuration file's network that names none); excludes <see cref="Gateway"/>.</summary>
    public bool NoGateway { get; init; }

    /// <summary>CIDR inside the subnet that sequential allocation draws from; null for the whole subnet.</summary>
    public string? IpRange { get; init; }

    /// <summary>Reserved addresses by name (<c>--aux-address NAME=IP</c>).</summary>
    public IReadOnlyDictionary<string, string> AuxAddresses { get; init; } = new Dictionary<string, string>();

    /// <summary>VNI, 1 to 16777215; null for the lowest free from 4096 (or the vxlanid_list option).</summary>
    public uint? Vni { get; init; }

    /// <summary>Inner MTU; null for the data path's default (or the com.docker.network.driver.mtu option).</summary>
    public int? Mtu { get; init; }

    /// <summary>Encrypt between hosts (also set by the "encrypted" option).</summary>
    public bool Encrypted { get; init; }

    /// <summary>Docker's <c>--internal</c>.</summary>
    public bool Internal { get; init; }

    /// <summary>Docker's <c>--attachable</c>.</summary>
    public bool Attachable { get; init; }

    /// <summary>User labels (<c>--label K=V</c>).</summary>
    public IReadOnlyDictionary<string, string> Labels { get; init; } = new Dictionary<string, string>();

    /// <summary>Driver options (<c>--opt K=V</c>): encrypted, com.docker.network.driver.mtu, com.docker.network.driver.overlay.vxlanid_list.</summary>
    public IReadOnlyDictionary<string, string> Options { get; init; } = new Dictionary<string, string>();
}

/// <summary><c>network connect</c>: attach the namespace <see cref="Netns"/> to <see cref="Network"/>.</summary>
public sealed record EndpointAttachRequest
{
    /// <summary>The network: name, full id or unique id prefix.</summary>
    public required string Network { get; init; }

    /// <summary>The network namespace (an <c>ip netns</c> name or a path such as /proc/PID/ns/net).</summary>
    public required string Netns { get; init; }

    /// <summary>The workload's name on the network; null for <see cref="Netns"/>.</summary>
    public string? Name { get; init; }

    /// <summary>The interface name inside the namespace; null for eth0.</summary>
    public string? Interface { get; init; }

    /// <summary>A specific IPv4 address (<c>--ip</c>) inside the subnet; null to allocate the next one.</summary>
    public string? Address { get; init; }

    /// <summary>A specific MAC (<c>--mac</c>); null to derive 02:00 + the address.</summary>
    public string? Mac { get; init; }

    /// <summary>Extra DNS names (<c>--alias</c>).</summary>
    public IReadOnlyList<string> Aliases { get; init; } = [];

    /// <summary>The endpoint's id (64 lowercase hex characters); null for a new random one.</summary>
    public string? Id { get; init; }

    /// <summary>A container runtime moves the TAP into the workload itself (<see cref="EndpointRecord.HandOff"/>).</summary>
    public bool HandOff { get; init; }
}

/// <summary>Parses repeated <c>KEY=VALUE</c> flags (<c>--label</c>, <c>--aux-address</c>, <c>--opt</c>) for a CLI.</summary>
public static class KeyValueList
{
    /// <summary>
    /// Splits each item at its first '='; a missing '=' gives an empty value when <paramref name="valueOptional"/>
    /// (Docker's <c>--opt encrypted</c>). Throws <see cref="ControlErrorCodes.InvalidArgument"/> naming
    /// <paramref name="field"/> for an item without a key or '=', or a key given twice.
    /// </summary>
    public static Dictionary<string, string> Parse(string field, IEnumerable<string> items, bool valueOptional = false)
    {
        var result = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (string item in items)
        {
            int eq = item.IndexOf('=');
            if (eq < 0 && !valueOptional) throw ControlException.Invalid(field, $"'{item}' is not KEY=VALUE");
            string key = eq < 0 ? item : item[..eq];
            if (key.Length == 0) throw ControlException.Invalid(field, $"'{item}' has an empty key (expected KEY=VALUE)");
            if (!result.TryAdd(key, eq < 0 ? "" : item[(eq + 1)..])) throw ControlException.Invalid(field, $"'{key}' is given twice");
        }
        return result;
    }
}
