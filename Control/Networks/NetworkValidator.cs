using System.Globalization;
using UserOverlay.Control.Ipam;
using UserOverlay.Router;

namespace UserOverlay.Control.Networks;

/// <summary>
/// Turns a <see cref="NetworkCreateRequest"/> into a <see cref="NetworkDefinition"/>: checks each field, fills in the
/// defaults (gateway, VNI, subnet from a pool) and checks the result against the existing networks. The first problem
/// found is thrown as a <see cref="ControlException"/> naming its field: <see cref="ControlErrorCodes.InvalidArgument"/>
/// for a malformed field, <see cref="ControlErrorCodes.Conflict"/> for a clash with another network.
/// Pure: reads its arguments only; <see cref="NetworkManager"/> calls it under its lock.
/// </summary>
public static class NetworkValidator
{
    /// <summary>The only driver.</summary>
    public const string OverlayDriver = "overlay";
    /// <summary>Docker's option that encrypts an overlay network (a flag: no value).</summary>
    public const string EncryptedOption = "encrypted";
    /// <summary>
    /// The file holding an encrypted network's key (an absolute path; the file as the configuration's <c>key_file:</c>:
    /// base64 of 16 or 32 bytes, or 16 or 32 raw bytes). Only the path is stored; the daemon reads the file.
    /// </summary>
    public const string KeyFileOption = "key_file";
    /// <summary>Docker's option for the inner MTU.</summary>
    public const string MtuOption = "com.docker.network.driver.mtu";
    /// <summary>Docker's option for the VNI (a comma list, one per subnet; here exactly one).</summary>
    public const string VxlanIdListOption = "com.docker.network.driver.overlay.vxlanid_list";
    /// <summary>VNIs handed out automatically start here, as swarm's (lower ones stay free for pinned networks).</summary>
    public const uint FirstAutomaticVni = 4096;
    /// <summary>The smallest inner MTU the data path accepts (the router's validation: 576, IPv4's minimum datagram every host must take, RFC 791).</summary>
    public const int MinMtu = 576;

    // A request deserialised from JSON may hold null where the type says a collection.
    private static readonly Dictionary<string, string> Empty = [];

    private static readonly string[] KnownOptions = [EncryptedOption, KeyFileOption, MtuOption, VxlanIdListOption];

    /// <summary>
    /// Validates <paramref name="request"/> against <paramref name="existing"/> and returns the new network with a new
    /// id and the creation time from <see cref="NetworkManagerOptions.Time"/>.
    /// </summary>
    /// <param name="request">The request.</param>
    /// <param name="existing">The networks the new one must not clash with (name, VNI, subnet).</param>
    /// <param name="options">Defaults and limits.</param>
    /// <param name="overlapWith">The networks whose subnets the new one must not overlap; null for all of
    /// <paramref name="existing"/>. (The configuration file's networks may overlap each other, as the router allows:
    /// VNIs isolate them; see <see cref="NetworkManager.Seed"/>.)</param>
    public static NetworkDefinition Validate(NetworkCreateRequest request, IReadOnlyCollection<NetworkDefinition> existing, NetworkManagerOptions options,
        IReadOnlyCollection<NetworkDefinition>? overlapWith = null)
    {
        string name = request.Name ?? "";
        if (!IsValidName(name))
            throw ControlException.Invalid("name", $"'{name}' is not a valid network name (1 to 64 letters, digits, '_', '.' or '-', starting with a letter or digit)");
        if (existing.FirstOrDefault(n => n.Name == name) is { } same)
            throw ControlException.Conflicting("name", $"a network named '{name}' already exists (id {ObjectIds.Short(same.Id)})");
        if (request.Driver is { } driver && driver != OverlayDriver)
            throw ControlException.Invalid("driver", $"'{driver}' is not supported (the only driver is {OverlayDriver})");

        var (encrypted, keyFile, mtu, vni) = ReadOptions(request);
        var subnet = request.Subnet is null ? DefaultSubnet(existing, options) : ParseSubnet(request.Subnet);
        if (request.NoGateway && request.Gateway is not null)
            throw ControlException.Invalid("gateway", "is given while no gateway is asked for (no_gateway)");
        uint? gateway = request.NoGateway ? null : request.Gateway is null ? subnet.Network + 1 : ParseHost("gateway", request.Gateway, subnet);
        Ipv4Prefix? ipRange = request.IpRange is null ? null : ParseRange(request.IpRange, subnet);
        var aux = ParseAuxAddresses(request.AuxAddresses ?? Empty, subnet, gateway);

        if (vni is { } v)
        {
            if (v is 0 or > Constants.MaxVni)
                throw ControlException.Invalid("vni", $"{v} is out of range (a VNI is 1 to {Constants.MaxVni})");
            if (existing.FirstOrDefault(n => n.Vni == v) is { } other)
                throw ControlException.Conflicting("vni", $"VNI {v} is already used by network '{other.Name}'");
        }
        int maxMtu = Math.Min(65535, options.MaxMtu);
        if (mtu is { } m && (m < MinMtu || m > maxMtu))
            throw ControlException.Invalid("mtu", $"{m} is out of range ({MinMtu} to {maxMtu}, the most the data path carries)");
        foreach (var (key, value) in request.Labels ?? Empty)
        {
            if (key.Length == 0 || key.Any(c => c == '=' || char.IsWhiteSpace(c) || char.IsControl(c)))
                throw ControlException.Invalid("label", $"key '{ControlException.Printable(key)}' is not valid (it must be non-empty, without '=', spaces or control characters)");
            if (value.Any(char.IsControl))
                throw ControlException.Invalid("label", $"the value of '{key}' contains a control character");
        }
        if ((overlapWith ?? existing).FirstOrDefault(n => Overlaps(n.Subnet, subnet)) is { } overlapping)
            throw ControlException.Conflicting("subnet", $"{subnet} overlaps {overlapping.Subnet} of network '{overlapping.Name}'");

        uint chosenVni = vni ?? LowestFreeVni(existing);
        var driverOptions = new Dictionary<string, string>(StringComparer.Ordinal)
        {
            [VxlanIdListOption] = chosenVni.ToString(CultureInfo.InvariantCulture),
        };
        if (encrypted) driverOptions[EncryptedOption] = "";
        if (keyFile is not null) driverOptions[KeyFileOption] = keyFile;
        if (mtu is { } mm) driverOptions[MtuOption] = mm.ToString(CultureInfo.InvariantCulture);

        return new NetworkDefinition
        {
            Id = ObjectIds.New(),
            Name = name,
            Created = options.Time.GetUtcNow(),
            Subnet = subnet,
            Gateway = gateway,
            IpRange = ipRange,
            AuxAddresses = aux,
            Vni = chosenVni,
            Mtu = mtu,
            Encrypted = encrypted,
            Internal = request.Internal,
            Attachable = request.Attachable,
            Labels = new Dictionary<string, string>(request.Labels ?? Empty, StringComparer.Ordinal),
            Options = driverOptions,
        };
    }

    /// <summary>True when the two prefixes share an address.</summary>
    public static bool Overlaps(Ipv4Prefix a, Ipv4Prefix b) => a.Contains(b.Network) || b.Contains(a.Network);

    /// <summary>True for 1 to 64 letters, digits, '_', '.' or '-', the first a letter or digit.</summary>
    public static bool IsValidName(string name) =>
        name.Length is > 0 and <= 64 && char.IsAsciiLetterOrDigit(name[0])
        && name.All(c => char.IsAsciiLetterOrDigit(c) || c is '_' or '.' or '-');

    /// <summary>The reserved addresses of <paramref name="network"/>'s pool: the gateway and the aux addresses.</summary>
    public static IEnumerable<uint> ReservedAddresses(NetworkDefinition network) =>
        network.Gateway is uint g ? network.AuxAddresses.Select(a => a.Address).Append(g) : network.AuxAddresses.Select(a => a.Address);

    // Merges the driver options into the typed fields: (encrypted, key file, mtu, vni).
    private static (bool Encrypted, string? KeyFile, int? Mtu, uint? Vni) ReadOptions(NetworkCreateRequest request)
    {
        bool encrypted = request.Encrypted;
        string? keyFile = null;
        int? mtu = request.Mtu;
        uint? vni = request.Vni;
        foreach (var (key, value) in request.Options ?? Empty)
        {
            switch (key)
            {
                case EncryptedOption:
                    if (value is not ("" or "true"))
                        throw ControlException.Invalid("opt", $"'{EncryptedOption}' is a flag and takes no value (got '{value}')");
                    encrypted = true;
                    break;
                case KeyFileOption:
                    if (value.Length == 0 || value[0] != '/' || value.Any(char.IsControl))
                        throw ControlException.Invalid("opt", $"{KeyFileOption} '{ControlException.Printable(value)}' must be an absolute path (the file holding the network's key, read by the daemon)");
                    keyFile = value;
                    break;
                case MtuOption:
                    mtu = (int)Math.Min(NumberOption(MtuOption, value, mtu, "mtu"), int.MaxValue);
                    break;
                case VxlanIdListOption:
                    if (value.Contains(','))
                        throw ControlException.Invalid("opt", $"{VxlanIdListOption} '{value}' lists several VNIs, but the network has one subnet and takes one VNI");
                    vni = (uint)Math.Min(NumberOption(VxlanIdListOption, value, vni, "vni"), uint.MaxValue);
                    break;
                default:
                    throw ControlException.Invalid("opt", $"'{key}' is not an option of the overlay driver (known: {string.Join(", ", KnownOptions)})");
            }
        }
        if (keyFile is not null && !encrypted)
            throw ControlException.Invalid("opt", $"{KeyFileOption} is given but the network is not encrypted (add -o {EncryptedOption}, or remove {KeyFileOption})");
        return (encrypted, keyFile, mtu, vni);
    }

    // A numeric option; it must agree with the flag given for the same setting, if any. Huge values are clamped
    // by the caller, and the range check that follows refuses them.
    private static long NumberOption(string key, string value, long? flag, string flagName)
    {
        if (!long.TryParse(value, NumberStyles.None, CultureInfo.InvariantCulture, out long n))
            throw ControlException.Invalid("opt", $"{key} '{value}' is not a number");
        if (flag is { } f && f != n)
            throw ControlException.Invalid("opt", $"{key}={n} contradicts {flagName} {f}");
        return n;
    }

    private static Ipv4Prefix ParseSubnet(string text)
    {
        if (!Ipv4Prefix.TryParse(text, out var subnet, out string why))
            throw ControlException.Invalid("subnet", why);
        if (subnet.Length is < AddressPool.MinPrefixLength or > AddressPool.MaxPrefixLength)
            throw ControlException.Invalid("subnet", $"{subnet} is /{subnet.Length}; use a subnet of /{AddressPool.MinPrefixLength} to /{AddressPool.MaxPrefixLength}");
        return subnet;
    }

    private static Ipv4Prefix ParseRange(string text, Ipv4Prefix subnet)
    {
        if (!Ipv4Prefix.TryParse(text, out var range, out string why))
            throw ControlException.Invalid("ip-range", why);
        if (range.Length < subnet.Length || !subnet.Contains(range.Network))
            throw ControlException.Invalid("ip-range", $"{range} is not inside the subnet {subnet}");
        return range;
    }

    // An address of the subnet that an endpoint could have: not the network or broadcast address.
    private static uint ParseHost(string field, string text, Ipv4Prefix subnet)
    {
        if (!Ipv4Prefix.TryParseAddress(text, out uint a))
            throw ControlException.Invalid(field, $"'{text}' is not an IPv4 address");
        if (!subnet.Contains(a))
            throw ControlException.Invalid(field, $"{text} is outside the subnet {subnet}");
        if (AddressPool.NetworkOrBroadcast(subnet, a) is { } kind)
            throw ControlException.Invalid(field, $"{text} is the {kind} address of {subnet}");
        return a;
    }

    private static List<AuxAddress> ParseAuxAddresses(IReadOnlyDictionary<string, string> given, Ipv4Prefix subnet, uint? gateway)
    {
        var result = new List<AuxAddress>();
        var byAddress = new Dictionary<uint, string>();
        foreach (var (name, text) in given)
        {
            if (name.Length == 0 || name.Any(c => c == '=' || char.IsWhiteSpace(c) || char.IsControl(c)))
                throw ControlException.Invalid("aux-address", $"'{name}' is not a valid name (non-empty, without '=' or spaces)");
            uint a = ParseHost("aux-address", text, subnet);
            if (a == gateway)
                throw ControlException.Invalid("aux-address", $"{name}={text} is the gateway address");
            if (!byAddress.TryAdd(a, name))
                throw ControlException.Invalid("aux-address", $"{name}={text} repeats the address of {byAddress[a]}");
            result.Add(new AuxAddress(name, a));
        }
        return result;
    }

    private static Ipv4Prefix DefaultSubnet(IReadOnlyCollection<NetworkDefinition> existing, NetworkManagerOptions options)
    {
        if (options.DefaultAddressPools.Count == 0)
            throw ControlException.Invalid("subnet", "is required (this daemon has no default address pool)");
        int length = options.DefaultSubnetLength;
        foreach (var pool in options.DefaultAddressPools)
        {
            if (pool.Length > length) continue;
            ulong step = 1UL << (32 - length), end = (ulong)pool.Network + (1UL << (32 - pool.Length));
            for (ulong net = pool.Network; net < end; net += step)
            {
                var candidate = new Ipv4Prefix((uint)net, length);
                if (!existing.Any(n => Overlaps(n.Subnet, candidate))) return candidate;
            }
        }
        throw new ControlException(ControlErrorCodes.Exhausted,
            $"subnet: every /{length} of the default address pools ({string.Join(", ", options.DefaultAddressPools)}) is in use; give --subnet", "subnet");
    }

    private static uint LowestFreeVni(IReadOnlyCollection<NetworkDefinition> existing)
    {
        var used = existing.Select(n => n.Vni).ToHashSet();
        for (uint v = FirstAutomaticVni; v <= Constants.MaxVni; v++)
            if (!used.Contains(v)) return v;
        throw new ControlException(ControlErrorCodes.Exhausted, $"vni: every VNI from {FirstAutomaticVni} up is in use; give --vni", "vni");
    }
}
