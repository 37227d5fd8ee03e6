using UserOverlay.Control.Ipam;
using UserOverlay.Control.State;
using UserOverlay.Router;

namespace UserOverlay.Control.Networks;

/// <summary>
/// The networks and endpoints of a host, at run time: <c>network create/ls/inspect/rm/connect/disconnect</c> as a
/// library. Each operation validates, allocates (address, MAC, VNI), asks the data plane
/// (<see cref="INetworkDataPlane"/>), then writes the store (<see cref="INetworkStore"/>), and is all-or-nothing: when
/// any step throws, the steps before it are undone and the exception propagates — a <see cref="ControlException"/>
/// for the manager's own refusals, the data plane's or store's exception otherwise.
/// <para>
/// Thread-safety: every public member takes one lock, so operations run one at a time, data-plane calls included;
/// queries return immutable records, safe to keep. Start-up: the constructor reads the store and rebuilds the address
/// pools; it does not call the data plane — the daemon starts its router from <see cref="Snapshot"/>.
/// </para>
/// </summary>
public sealed class NetworkManager
{
    /// <summary>The interface name an endpoint gets when the request names none.</summary>
    public const string DefaultInterface = "eth0";

    private readonly Lock _lock = new();
    private readonly INetworkStore _store;
    private readonly INetworkDataPlane _dataPlane;
    private readonly NetworkManagerOptions _options;
    private readonly Dictionary<string, Network> _byId = new(StringComparer.Ordinal);
    private readonly Dictionary<string, Network> _byName = new(StringComparer.Ordinal);
    // Across networks: a namespace cannot hold two interfaces of one name.
    private readonly Dictionary<(string Netns, string Interface), EndpointRecord> _interfaces = [];

    /// <summary>
    /// A manager over <paramref name="store"/>'s state. Throws <see cref="ControlException"/> with
    /// <see cref="ControlErrorCodes.CorruptState"/> when the stored objects are unreadable or contradict each other
    /// (two networks with one VNI, an endpoint of a missing network, two endpoints with one address). The sequential
    /// allocation of each network continues after its newest endpoint's address (the cursor itself is not stored).
    /// </summary>
    public NetworkManager(INetworkStore store, INetworkDataPlane dataPlane, NetworkManagerOptions? options = null)
    {
        _store = store;
        _dataPlane = dataPlane;
        _options = options ?? new NetworkManagerOptions();
        var state = store.Load();
        foreach (var def in state.Networks) Restore(def);
        foreach (var ep in state.Endpoints) Restore(ep);
    }

    /// <summary>Creates a network (validated by <see cref="NetworkValidator"/>) and returns it; its id is what <c>network create</c> prints.</summary>
    public NetworkDefinition CreateNetwork(NetworkCreateRequest request)
    {
        lock (_lock)
        {
            var def = NetworkValidator.Validate(request, [.. _byId.Values.Select(n => n.Definition)], _options);
            var network = new Network(def);
            _dataPlane.AddNetwork(def);
            WriteOrUndo(() => _store.PutNetwork(def), () => _dataPlane.RemoveNetwork(def));
            _byId.Add(def.Id, network);
            _byName.Add(def.Name, network);
            return def;
        }
    }

    /// <summary>
    /// Removes the network named by <paramref name="nameOrId"/> and returns it. Refused with
    /// <see cref="ControlErrorCodes.InUse"/>, naming them, while endpoints are attached.
    /// </summary>
    public NetworkDefinition RemoveNetwork(string nameOrId)
    {
        lock (_lock)
        {
            var network = Find(nameOrId);
            var def = network.Definition;
            if (network.Endpoints.Count > 0)
            {
                var names = network.Endpoints.Values.OrderBy(e => e.Created).Select(e => e.Name).ToList();
                string listed = names.Count <= 10 ? string.Join(", ", names) : $"{string.Join(", ", names.Take(10))} and {names.Count - 10} more";
                throw new ControlException(ControlErrorCodes.InUse,
                    $"network: '{def.Name}' still has {names.Count} endpoint(s) attached ({listed}); disconnect them first", "network");
            }
            _dataPlane.RemoveNetwork(def);
            WriteOrUndo(() => _store.DeleteNetwork(def.Id), () => _dataPlane.AddNetwork(def));
            _byId.Remove(def.Id);
            _byName.Remove(def.Name);
            return def;
        }
    }

    /// <summary>Every network, oldest first.</summary>
    public IReadOnlyList<NetworkDefinition> ListNetworks()
    {
        lock (_lock) return [.. _byId.Values.Select(n => n.Definition).OrderBy(d => d.Created)];
    }

    /// <summary>
    /// The network whose full id, name or unique id prefix is <paramref name="nameOrId"/> (tried in that order, as
    /// Docker does). Throws <see cref="ControlErrorCodes.NotFound"/> or <see cref="ControlErrorCodes.Ambiguous"/>.
    /// </summary>
    public NetworkDefinition GetNetwork(string nameOrId)
    {
        lock (_lock) return Find(nameOrId).Definition;
    }

    /// <summary>The endpoints of a network, oldest first.</summary>
    public IReadOnlyList<EndpointRecord> GetEndpoints(string nameOrId)
    {
        lock (_lock) return [.. Find(nameOrId).Endpoints.Values.OrderBy(e => e.Created)];
    }

    /// <summary>Docker's inspect view of a network.</summary>
    public NetworkInspect Inspect(string nameOrId)
    {
        lock (_lock)
        {
            var network = Find(nameOrId);
            return NetworkInspect.From(network.Definition, network.Endpoints.Values.OrderBy(e => e.Created));
        }
    }

    /// <summary>Addresses in use on a network and how many its range holds (for <c>network ls</c> or metrics).</summary>
    public (int Allocated, int Capacity) AddressUsage(string nameOrId)
    {
        lock (_lock)
        {
            var pool = Find(nameOrId).Pool;
            return (pool.Count, pool.Capacity);
        }
    }

    /// <summary>Everything at once, consistent: what a daemon starting its router serves.</summary>
    public StoredState Snapshot()
    {
        lock (_lock)
        {
            return new([.. _byId.Values.Select(n => n.Definition).OrderBy(d => d.Created)],
                       [.. _byId.Values.SelectMany(n => n.Endpoints.Values).OrderBy(e => e.Created)]);
        }
    }

    /// <summary>
    /// Attaches a namespace to a network: checks the request, takes the address (the given one or the next free) and
    /// the MAC (the given one or 02:00 + the address), has the data plane create the interface and stores the record.
    /// A namespace attaches once per network, and its interface name must be free in it.
    /// </summary>
    public EndpointRecord Attach(EndpointAttachRequest request)
    {
        lock (_lock)
        {
            var network = Find(request.Network);
            var def = network.Definition;
            string netns = RequireText("netns", request.Netns, "a namespace name or path");
            string name = RequireText("name", request.Name ?? netns, "a name");
            string iface = request.Interface ?? DefaultInterface;
            if (iface.Length is 0 or > 15 || iface is "." or ".." || iface.Any(c => c is '/' or ':' || char.IsWhiteSpace(c) || char.IsControl(c)))
                throw ControlException.Invalid("interface", $"'{iface}' is not a valid interface name (1 to 15 characters, no '/', ':' or spaces)");
            var aliases = CheckAliases(request.Aliases ?? []);
            if (network.ByNetns.TryGetValue(netns, out var there))
                throw ControlException.Conflicting("netns", $"'{netns}' is already connected to network '{def.Name}' (endpoint '{there.Name}')");
            if (network.ByName.ContainsKey(name))
                throw ControlException.Conflicting("name", $"an endpoint named '{name}' is already connected to network '{def.Name}'");
            if (_interfaces.TryGetValue((netns, iface), out var holder))
                throw ControlException.Conflicting("interface", $"namespace '{netns}' already has an interface '{iface}' (network '{_byId[holder.NetworkId].Definition.Name}'); give another --interface");
            MacAddress? mac = request.Mac is null ? null : EndpointMac.ParseUnicast(request.Mac);
            if (mac is { } given && network.ByMac.TryGetValue(given, out var macHolder))
                throw ControlException.Conflicting("mac", $"{given} is already used by endpoint '{macHolder.Name}' on network '{def.Name}'");

            uint address;
            if (request.Address is { } ip)
            {
                if (!Ipv4Prefix.TryParseAddress(ip, out address))
                    throw ControlException.Invalid("ip", $"'{ip}' is not an IPv4 address");
                network.Pool.AllocateSpecific(address);
            }
            else address = network.Pool.AllocateNext();

            EndpointRecord endpoint;
            try
            {
                var effectiveMac = mac ?? EndpointMac.FromAddress(address);
                if (mac is null && network.ByMac.TryGetValue(effectiveMac, out macHolder))
                    throw ControlException.Conflicting("mac", $"{effectiveMac}, derived from {VtepEndpoint.FormatAddress(address)}, is already used by endpoint '{macHolder.Name}'; give --mac");
                endpoint = new EndpointRecord
                {
                    Id = ObjectIds.New(),
                    NetworkId = def.Id,
                    Name = name,
                    Netns = netns,
                    Interface = iface,
                    Mac = effectiveMac,
                    Address = address,
                    PrefixLength = def.Subnet.Length,
                    Aliases = aliases,
                    Created = _options.Time.GetUtcNow(),
                };
                _dataPlane.AttachEndpoint(def, endpoint);
                WriteOrUndo(() => _store.PutEndpoint(endpoint), () => _dataPlane.DetachEndpoint(def, endpoint));
            }
            catch
            {
                network.Pool.Release(address);
                throw;
            }
            network.Add(endpoint);
            _interfaces.Add((netns, iface), endpoint);
            return endpoint;
        }
    }

    /// <summary>
    /// Detaches the endpoint named by <paramref name="endpoint"/> (its id, namespace or name, tried in that order) from
    /// a network, releases its address and returns it. Throws <see cref="ControlErrorCodes.NotFound"/> when none matches.
    /// </summary>
    public EndpointRecord Detach(string network, string endpoint)
    {
        lock (_lock)
        {
            var net = Find(network);
            var def = net.Definition;
            if (string.IsNullOrEmpty(endpoint)) throw ControlException.Invalid("netns", "a namespace, endpoint name or endpoint id is required");
            var ep = net.Endpoints.GetValueOrDefault(endpoint) ?? net.ByNetns.GetValueOrDefault(endpoint) ?? net.ByName.GetValueOrDefault(endpoint)
                ?? throw new ControlException(ControlErrorCodes.NotFound, $"netns: '{endpoint}' is not connected to network '{def.Name}'", "netns");
            _dataPlane.DetachEndpoint(def, ep);
            WriteOrUndo(() => _store.DeleteEndpoint(ep.Id), () => _dataPlane.AttachEndpoint(def, ep));
            net.Remove(ep);
            _interfaces.Remove((ep.Netns, ep.Interface));
            net.Pool.Release(ep.Address);
            return ep;
        }
    }

    // Full id, then name, then unique id prefix (Docker's order).
    private Network Find(string? nameOrId)
    {
        if (string.IsNullOrEmpty(nameOrId)) throw ControlException.Invalid("network", "a network name or id is required");
        if (_byId.TryGetValue(nameOrId, out var n) || _byName.TryGetValue(nameOrId, out n)) return n;
        if (ObjectIds.IsHex(nameOrId))
        {
            var matches = _byId.Values.Where(x => x.Definition.Id.StartsWith(nameOrId, StringComparison.Ordinal)).Take(3).ToList();
            if (matches.Count == 1) return matches[0];
            if (matches.Count > 1)
                throw new ControlException(ControlErrorCodes.Ambiguous,
                    $"network: '{nameOrId}' is the start of several network ids ({string.Join(", ", matches.Select(m => m.Definition.Name))}); give more of the id or the name", "network");
        }
        throw new ControlException(ControlErrorCodes.NotFound, $"network: no network is named '{nameOrId}' or has an id starting with it", "network");
    }

    // A store write after a data-plane step: if the write fails, undo the step and rethrow the write's exception.
    private static void WriteOrUndo(Action write, Action undo)
    {
        try
        {
            write();
        }
        catch (Exception failure)
        {
            try { undo(); }
            catch (Exception undoFailure)
            {
                throw new ControlException(ControlErrorCodes.Internal,
                    $"{failure.Message}; undoing the data-plane change failed too, so it may be left behind: {undoFailure.Message}",
                    inner: new AggregateException(failure, undoFailure));
            }
            throw;
        }
    }

    private static string RequireText(string field, string? value, string what)
    {
        if (string.IsNullOrWhiteSpace(value) || value.Any(char.IsControl))
            throw ControlException.Invalid(field, $"'{ControlException.Printable(value)}' is not {what} (non-empty, no control characters)");
        return value;
    }

    // Aliases are DNS names: 1 to 253 letters, digits, '-', '_' or '.', each given once.
    private static List<string> CheckAliases(IReadOnlyList<string> aliases)
    {
        var seen = new HashSet<string>(StringComparer.OrdinalIgnoreCase);
        foreach (string a in aliases)
        {
            if (a.Length is 0 or > 253 || !a.All(c => char.IsAsciiLetterOrDigit(c) || c is '-' or '_' or '.'))
                throw ControlException.Invalid("alias", $"'{a}' is not a valid DNS name (1 to 253 letters, digits, '-', '_' or '.')");
            if (!seen.Add(a)) throw ControlException.Invalid("alias", $"'{a}' is given twice");
        }
        return [.. aliases];
    }

    private void Restore(NetworkDefinition def)
    {
        var existing = _byId.Values.Select(n => n.Definition).ToList();
        string? clash = !ObjectIds.IsValid(def.Id) ? "its id is not 64 hex characters"
            : _byId.ContainsKey(def.Id) ? "its id is stored twice"
            : _byName.ContainsKey(def.Name) ? $"its name '{def.Name}' is another network's too"
            : existing.FirstOrDefault(n => n.Vni == def.Vni) is { } v ? $"its VNI {def.Vni} is network '{v.Name}''s too"
            : existing.FirstOrDefault(n => NetworkValidator.Overlaps(n.Subnet, def.Subnet)) is { } o ? $"its subnet {def.Subnet} overlaps network '{o.Name}''s"
            : null;
        if (clash is not null) throw CorruptObject("network", def.Id, clash);
        Network network;
        try { network = new Network(def); }
        catch (ArgumentException e) { throw CorruptObject("network", def.Id, e.Message); }
        _byId.Add(def.Id, network);
        _byName.Add(def.Name, network);
    }

    private void Restore(EndpointRecord ep)
    {
        if (!_byId.TryGetValue(ep.NetworkId, out var network))
            throw CorruptObject("endpoint", ep.Id, $"its network {ep.NetworkId} does not exist");
        string? clash = network.Endpoints.ContainsKey(ep.Id) ? "its id is stored twice"
            : network.ByNetns.ContainsKey(ep.Netns) ? $"its namespace '{ep.Netns}' is attached twice"
            : network.ByName.ContainsKey(ep.Name) ? $"its name '{ep.Name}' is another endpoint's too"
            : network.ByMac.ContainsKey(ep.Mac) ? $"its MAC {ep.Mac} is another endpoint's too"
            : _interfaces.ContainsKey((ep.Netns, ep.Interface)) ? $"its interface '{ep.Interface}' in '{ep.Netns}' is another endpoint's too"
            : ep.PrefixLength != network.Definition.Subnet.Length ? $"its prefix /{ep.PrefixLength} is not its subnet's"
            : null;
        if (clash is not null) throw CorruptObject("endpoint", ep.Id, clash);
        try { network.Pool.AllocateSpecific(ep.Address); }
        catch (ControlException e) { throw CorruptObject("endpoint", ep.Id, e.Message); }
        network.Pool.ResumeAfter(ep.Address);
        network.Add(ep);
        _interfaces.Add((ep.Netns, ep.Interface), ep);
    }

    private ControlException CorruptObject(string kind, string id, string what) =>
        new(ControlErrorCodes.CorruptState, $"the state in {_store.Location} is inconsistent: {kind} {id}: {what}");

    // A network with its pool and the indexes of its endpoints (by id, namespace, name and MAC).
    private sealed class Network(NetworkDefinition definition)
    {
        public NetworkDefinition Definition { get; } = definition;
        public AddressPool Pool { get; } = new(definition.Subnet, definition.IpRange, NetworkValidator.ReservedAddresses(definition));
        public Dictionary<string, EndpointRecord> Endpoints { get; } = new(StringComparer.Ordinal);
        public Dictionary<string, EndpointRecord> ByNetns { get; } = new(StringComparer.Ordinal);
        public Dictionary<string, EndpointRecord> ByName { get; } = new(StringComparer.Ordinal);
        public Dictionary<MacAddress, EndpointRecord> ByMac { get; } = [];

        public void Add(EndpointRecord e)
        {
            Endpoints.Add(e.Id, e);
            ByNetns.Add(e.Netns, e);
            ByName.Add(e.Name, e);
            ByMac.Add(e.Mac, e);
        }

        public void Remove(EndpointRecord e)
        {
            Endpoints.Remove(e.Id);
            ByNetns.Remove(e.Netns);
            ByName.Remove(e.Name);
            ByMac.Remove(e.Mac);
        }
    }
}
