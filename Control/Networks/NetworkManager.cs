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
/// pools without calling the data plane; then a daemon calls <see cref="Seed"/> with its configuration file's networks
/// and endpoints (which its router was started from) and <see cref="Resume"/>, which brings what the API made back
/// into the data plane. An embedder without a file may start a router from <see cref="Snapshot"/> instead.
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
    private IAddressAuthority? _authority;

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

    /// <summary>The scope of a network that is a cluster's (<see cref="AdoptNetwork"/>), as Docker's inspect shows it.</summary>
    public const string SwarmScope = "swarm";

    /// <summary>
    /// Who hands out addresses on the cluster's networks (<see cref="NetworkDefinition.Scope"/> "swarm"): set by the cluster
    /// agent once the host is in a cluster, null otherwise — attaching to a cluster network is then refused with
    /// <see cref="ControlErrorCodes.Unavailable"/>.
    /// </summary>
    public IAddressAuthority? AddressAuthority
    {
        get { lock (_lock) return _authority; }
        set { lock (_lock) _authority = value; }
    }

    /// <summary>
    /// Makes a network of the cluster this host's too (the cluster agent calls it when the managers' state lists a network
    /// this host does not serve yet): the data plane serves it and the store keeps it, with the cluster's id, name, VNI
    /// and subnet, scope "swarm", so that the host keeps forwarding on it while no manager answers and across restarts.
    /// Idempotent for the same definition. Refused with <see cref="ControlErrorCodes.Conflict"/> when one of this host's
    /// own networks has its name or VNI, or a subnet overlapping it (the message names it: remove or rename that one).
    /// </summary>
    public NetworkDefinition AdoptNetwork(NetworkDefinition definition)
    {
        ArgumentNullException.ThrowIfNull(definition);
        var def = definition with { Scope = SwarmScope, FromConfig = false };
        lock (_lock)
        {
            if (_byId.TryGetValue(def.Id, out var known))
            {
                if (SameNetwork(known.Definition, def) && known.Definition.Name == def.Name) return known.Definition;
                throw ControlException.Conflicting("network", $"the cluster's network '{def.Name}' (id {ObjectIds.Short(def.Id)}) differs from the one of that id this host serves ({Difference(known.Definition, def)})");
            }
            if (_byName.TryGetValue(def.Name, out var named))
                throw ControlException.Conflicting("name", $"the cluster's network '{def.Name}' has the name of this host's network {ObjectIds.Short(named.Definition.Id)} ({named.Definition.Scope}); remove or rename that one");
            if (_byId.Values.FirstOrDefault(n => n.Definition.Vni == def.Vni) is { } sameVni)
                throw ControlException.Conflicting("vni", $"the cluster's network '{def.Name}' has VNI {def.Vni}, which this host's network '{sameVni.Definition.Name}' uses; remove that one");
            if (_byId.Values.FirstOrDefault(n => NetworkValidator.Overlaps(n.Definition.Subnet, def.Subnet)) is { } overlap)
                throw ControlException.Conflicting("subnet", $"the cluster's network '{def.Name}' has subnet {def.Subnet}, which overlaps {overlap.Definition.Subnet} of this host's network '{overlap.Definition.Name}'; remove that one");
            var network = new Network(def);
            _dataPlane.AddNetwork(def);
            WriteOrUndo(() => _store.PutNetwork(def), () => _dataPlane.RemoveNetwork(def));
            _byId.Add(def.Id, network);
            _byName.Add(def.Name, network);
            return def;
        }
    }

    /// <summary>
    /// Stops serving a network of the cluster the managers no longer list (the cluster agent calls it): this host's
    /// endpoints on it are detached first (TAPs removed) and returned; their addresses are not given back to the
    /// authority, whose owner removed the network and its allocations with it. Unknown ids return nothing; a network of
    /// scope "local" is refused with <see cref="ControlErrorCodes.InvalidArgument"/>.
    /// </summary>
    public IReadOnlyList<EndpointRecord> ForgetNetwork(string networkId)
    {
        lock (_lock)
        {
            if (!_byId.TryGetValue(networkId, out var network)) return [];
            var def = network.Definition;
            if (def.Scope != SwarmScope) throw ControlException.Invalid("network", $"'{def.Name}' is this host's own network, not the cluster's");
            var detached = new List<EndpointRecord>();
            foreach (var ep in network.Endpoints.Values.OrderBy(e => e.Created).ToList())
            {
                _dataPlane.DetachEndpoint(def, ep);
                Forget(network, ep);
                detached.Add(ep);
            }
            _dataPlane.RemoveNetwork(def);
            _store.DeleteNetwork(def.Id);
            _byId.Remove(def.Id);
            _byName.Remove(def.Name);
            return detached;
        }
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
    /// Makes the configuration file's networks and endpoints the manager's; the daemon calls it once at start, after
    /// the constructor and before <see cref="Resume"/>. The file is authoritative for what it names:
    /// <list type="bullet">
    /// <item>the file's networks may overlap each other (VNIs keep them apart, as the router always allowed), but not a
    /// network the API created — and <see cref="CreateNetwork"/> refuses a subnet overlapping any network;</item>
    /// <item>a network of the file that is stored with the same definition (VNI, subnet, gateway, ip-range, aux
    /// addresses, MTU, encryption, internal) keeps its id and its endpoints; one the API created becomes the file's;</item>
    /// <item>a network stored under the name of one of the file's with another definition is replaced (a new id), and
    /// a network an earlier file declared and this one does not is removed — but only when no endpoint attached at run
    /// time is on it: otherwise seeding fails with <see cref="ControlErrorCodes.Conflict"/> naming those endpoints, and
    /// nothing has changed;</item>
    /// <item>the endpoints of the file are the file's: a stored one that matches one of the file's exactly (network,
    /// namespace, interface, address, MAC) is kept, the others the file seeded before are deleted, and the file's
    /// missing ones are attached. Endpoints attached at run time are left alone.</item>
    /// </list>
    /// The data plane is not called: the daemon starts its router from the same file, so it serves these already.
    /// Errors are <see cref="ControlException"/>s whose message starts with the file's object
    /// ("networks[1] 'green': subnet: …"). A failure after the checks (an address of the file taken by a run-time
    /// endpoint) may leave the file's objects half seeded in the store; the next start seeds them again.
    /// </summary>
    public void Seed(IReadOnlyList<NetworkCreateRequest> networks, IReadOnlyList<EndpointAttachRequest> endpoints)
    {
        lock (_lock)
        {
            var named = networks.Select(n => n.Name).ToHashSet(StringComparer.Ordinal);
            // The target set of networks, decided before anything is written.
            var target = _byId.Values.Select(n => n.Definition).Where(d => !d.FromConfig && !named.Contains(d.Name)).ToList();
            var adopted = new List<(Network Stored, NetworkDefinition Definition)>();
            var created = new List<NetworkDefinition>();
            var dropped = new List<Network>();
            for (int i = 0; i < networks.Count; i++)
            {
                var request = networks[i];
                NetworkDefinition candidate;
                try { candidate = NetworkValidator.Validate(request, target, _options, overlapWith: [.. target.Where(d => !d.FromConfig)]) with { FromConfig = true }; }
                catch (ControlException e) { throw SeedError($"networks[{i}] '{request.Name}'", e); }
                _byName.TryGetValue(request.Name, out var stored);
                if (stored is not null && SameNetwork(stored.Definition, candidate))
                {
                    var def = stored.Definition with { FromConfig = true };
                    adopted.Add((stored, def));
                    target.Add(def);
                    continue;
                }
                if (stored is not null)
                {
                    RefuseIfRunTimeEndpoints(stored, $"networks[{i}] '{request.Name}' differs from the stored network of that name ({Difference(stored.Definition, candidate)})");
                    dropped.Add(stored);
                }
                created.Add(candidate);
                target.Add(candidate);
            }
            foreach (var gone in _byId.Values.Where(n => n.Definition.FromConfig && !named.Contains(n.Definition.Name)))
            {
                RefuseIfRunTimeEndpoints(gone, $"network '{gone.Definition.Name}' came from the configuration file, which no longer declares it");
                dropped.Add(gone);
            }

            // Apply: drop what the file no longer declares, then make what it does.
            foreach (var net in dropped)
            {
                foreach (var ep in net.Endpoints.Values.ToList()) Forget(net, ep);
                _store.DeleteNetwork(net.Definition.Id);
                _byId.Remove(net.Definition.Id);
                _byName.Remove(net.Definition.Name);
            }
            foreach (var (stored, def) in adopted)
            {
                if (!stored.Definition.FromConfig) _store.PutNetwork(def);
                stored.Definition = def;
            }
            foreach (var def in created)
            {
                _store.PutNetwork(def);
                var network = new Network(def);
                _byId.Add(def.Id, network);
                _byName.Add(def.Name, network);
            }
            var wanted = endpoints.Select((e, i) => (Request: e, Index: i)).ToList();
            foreach (var net in _byId.Values)
            {
                foreach (var ep in net.Endpoints.Values.Where(e => e.FromConfig).ToList())
                {
                    int match = wanted.FindIndex(w => SameEndpoint(net, ep, w.Request));
                    if (match >= 0) wanted.RemoveAt(match);
                    else Forget(net, ep);
                }
            }
            foreach (var (request, i) in wanted)
            {
                try { AttachLocked(request, callDataPlane: false, fromConfig: true); }
                catch (ControlException e) { throw SeedError($"endpoints[{i}] ('{request.Netns}' on '{request.Network}')", e); }
            }
        }
    }

    /// <summary>
    /// Brings the data plane up to the stored state when the daemon starts (after <see cref="Seed"/>): every network
    /// the API created is added, and every endpoint the API attached is attached again with its MAC, address and
    /// interface — unless <paramref name="whyNot"/> gives a reason not to (its namespace is gone), or the attach fails;
    /// then the endpoint is released (record deleted, address freed) and listed in the result. The configuration's
    /// networks and endpoints are skipped (the router was started from them). A network the data plane refuses fails
    /// the start with <see cref="ControlErrorCodes.CorruptState"/>, naming it and what to do.
    /// </summary>
    public IReadOnlyList<ReleasedEndpoint> Resume(Func<EndpointRecord, string?> whyNot)
    {
        lock (_lock)
        {
            foreach (var net in _byId.Values.OrderBy(n => n.Definition.Created).Where(n => !n.Definition.FromConfig))
            {
                try { _dataPlane.AddNetwork(net.Definition); }
                catch (Exception e) when (e is not OutOfMemoryException)
                {
                    throw new ControlException(ControlErrorCodes.CorruptState,
                        $"cannot restore network '{net.Definition.Name}' (id {ObjectIds.Short(net.Definition.Id)}, stored in {_store.Location}): {e.Message}; fix that, or remove the network's state file to forget it", "network", e);
                }
            }
            var released = new List<ReleasedEndpoint>();
            // A handed-off endpoint's TAP lived in a runtime's workload: its plugin restores it there (not attached here).
            foreach (var (net, ep) in _byId.Values.SelectMany(n => n.Endpoints.Values.Select(e => (n, e))).Where(x => !x.e.FromConfig && !x.e.HandOff).OrderBy(x => x.e.Created).ToList())
            {
                string? reason = whyNot(ep);
                if (reason is null)
                {
                    try
                    {
                        _dataPlane.AttachEndpoint(net.Definition, ep);
                        continue;
                    }
                    catch (Exception e) when (e is not OutOfMemoryException) { reason = e.Message; }
                }
                Forget(net, ep);
                released.Add(new ReleasedEndpoint(net.Definition.Name, ep, reason));
            }
            return released;
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

    /// <summary>
    /// The address the next attach to the network would get (<see cref="AddressPool.AllocateNext"/>), skipping
    /// <paramref name="exclude"/> (addresses promised to attaches to come), without taking it: what an IPAM plugin answers
    /// a runtime that attaches later with that address. Throws <see cref="ControlErrorCodes.Exhausted"/> when none is free.
    /// </summary>
    public uint ProposeAddress(string nameOrId, IReadOnlySet<uint> exclude)
    {
        lock (_lock)
        {
            var pool = Find(nameOrId).Pool;
            var taken = new List<uint>();
            try
            {
                while (true)
                {
                    uint a = pool.AllocateNext();
                    taken.Add(a);
                    if (!exclude.Contains(a)) return a;
                    if (taken.Count > exclude.Count) throw new ControlException(ControlErrorCodes.Exhausted, $"ip: no address of {pool.Range} is free", "ip");
                }
            }
            finally
            {
                foreach (uint a in taken) pool.Release(a);
            }
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
        lock (_lock) return AttachLocked(request, callDataPlane: true, fromConfig: false);
    }

    // The pool's next address that no other host's endpoint holds: the ones held elsewhere are passed over (taken and
    // given back, so the cursor moves past them) — each step takes a new address, so the loop ends, at the latest when
    // the pool is exhausted.
    private static uint AllocateNext(AddressPool pool, NetworkDefinition def, Func<NetworkDefinition, uint, bool>? heldElsewhere)
    {
        if (heldElsewhere is null) return pool.AllocateNext();
        var passed = new List<uint>();
        try
        {
            while (true)
            {
                uint a = pool.AllocateNext();
                if (!heldElsewhere(def, a)) return a;
                passed.Add(a);
            }
        }
        finally
        {
            foreach (uint a in passed) pool.Release(a);
        }
    }

    private EndpointRecord AttachLocked(EndpointAttachRequest request, bool callDataPlane, bool fromConfig)
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

        string id = request.Id ?? ObjectIds.New();
        if (!ObjectIds.IsValid(id)) throw ControlException.Invalid("id", $"'{ControlException.Printable(id)}' is not an endpoint id (64 lowercase hex characters)");
        uint? requested = null;
        if (request.Address is { } ip)
        {
            if (!Ipv4Prefix.TryParseAddress(ip, out uint parsed))
                throw ControlException.Invalid("ip", $"'{ip}' is not an IPv4 address");
            requested = parsed;
        }
        // A cluster network's address comes from the cluster (so no two hosts take one), then is taken here too.
        IAddressAuthority? authority = null;
        if (def.Scope == SwarmScope && !fromConfig)
        {
            authority = _authority ?? throw new ControlException(ControlErrorCodes.Unavailable,
                $"network: '{def.Name}' is the cluster's, and this host is not connected to the cluster now; retry once it is (useroverlay swarm status)", "network");
            var reservation = authority.Reserve(def, id, name, requested, mac);
            requested = reservation.Address;
            mac = reservation.Mac;
        }

        uint address;
        try
        {
            var elsewhere = authority is null && !fromConfig ? _options.HeldElsewhere : null;
            if (requested is uint fixedAddress)
            {
                if (elsewhere?.Invoke(def, fixedAddress) == true)
                    throw ControlException.Conflicting("ip", $"{VtepEndpoint.FormatAddress(fixedAddress)} is held by an endpoint of another host on network '{def.Name}' (its MAC would be that endpoint's too); give another --ip");
                network.Pool.AllocateSpecific(fixedAddress);
                address = fixedAddress;
            }
            else address = AllocateNext(network.Pool, def, elsewhere);
        }
        catch
        {
            authority?.Release(def, id);
            throw;
        }

        EndpointRecord endpoint;
        try
        {
            var effectiveMac = mac ?? EndpointMac.FromAddress(address);
            if (mac is null && network.ByMac.TryGetValue(effectiveMac, out macHolder))
                throw ControlException.Conflicting("mac", $"{effectiveMac}, derived from {VtepEndpoint.FormatAddress(address)}, is already used by endpoint '{macHolder.Name}'; give --mac");
            if (network.Endpoints.ContainsKey(id))
                throw ControlException.Conflicting("id", $"an endpoint with id {ObjectIds.Short(id)} is already connected to network '{def.Name}'");
            endpoint = new EndpointRecord
            {
                Id = id,
                NetworkId = def.Id,
                Name = name,
                Netns = netns,
                Interface = iface,
                Mac = effectiveMac,
                Address = address,
                PrefixLength = def.Subnet.Length,
                Aliases = aliases,
                Created = _options.Time.GetUtcNow(),
                FromConfig = fromConfig,
                HandOff = request.HandOff,
            };
            if (callDataPlane)
            {
                _dataPlane.AttachEndpoint(def, endpoint);
                WriteOrUndo(() => _store.PutEndpoint(endpoint), () => _dataPlane.DetachEndpoint(def, endpoint));
            }
            else _store.PutEndpoint(endpoint);
        }
        catch
        {
            network.Pool.Release(address);
            authority?.Release(def, id);
            throw;
        }
        network.Add(endpoint);
        _interfaces.Add((netns, iface), endpoint);
        return endpoint;
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
            if (def.Scope == SwarmScope) _authority?.Release(def, ep.Id);
            return ep;
        }
    }

    // Deletes an endpoint's record and frees its address, without the data plane (seeding, releasing at start).
    private void Forget(Network net, EndpointRecord ep)
    {
        _store.DeleteEndpoint(ep.Id);
        net.Remove(ep);
        _interfaces.Remove((ep.Netns, ep.Interface));
        net.Pool.Release(ep.Address);
    }

    private static void RefuseIfRunTimeEndpoints(Network net, string what)
    {
        var runTime = net.Endpoints.Values.Where(e => !e.FromConfig).OrderBy(e => e.Created).Select(e => $"'{e.Name}'").ToList();
        if (runTime.Count == 0) return;
        throw new ControlException(ControlErrorCodes.Conflict,
            $"{what}, but endpoints attached at run time are on it ({string.Join(", ", runTime)}): start with the file as it was and disconnect them, or keep the network as it is in the file", "network");
    }

    private static ControlException SeedError(string what, ControlException e) =>
        new(e.Code, $"the configuration's {what}: {e.Message}", e.Field, e);

    private static string GatewayText(NetworkDefinition n) => n.Gateway is uint g ? VtepEndpoint.FormatAddress(g) : "none";

    private static bool SameNetwork(NetworkDefinition a, NetworkDefinition b) =>
        a.Vni == b.Vni && a.Subnet == b.Subnet && a.Gateway == b.Gateway && a.IpRange == b.IpRange && a.Mtu == b.Mtu
        && a.Encrypted == b.Encrypted && a.Internal == b.Internal && a.AuxAddresses.SequenceEqual(b.AuxAddresses);

    private static string Difference(NetworkDefinition stored, NetworkDefinition file) =>
        stored.Vni != file.Vni ? $"VNI {stored.Vni} stored, {file.Vni} in the file"
        : stored.Subnet != file.Subnet ? $"subnet {stored.Subnet} stored, {file.Subnet} in the file"
        : stored.Gateway != file.Gateway ? $"gateway {GatewayText(stored)} stored, {GatewayText(file)} in the file"
        : stored.Mtu != file.Mtu ? $"MTU {stored.Mtu?.ToString(System.Globalization.CultureInfo.InvariantCulture) ?? "default"} stored, {file.Mtu?.ToString(System.Globalization.CultureInfo.InvariantCulture) ?? "default"} in the file"
        : "its ip-range, aux addresses, encryption or internal flag differ";

    private static bool SameEndpoint(Network net, EndpointRecord ep, EndpointAttachRequest r) =>
        r.Network == net.Definition.Name && r.Netns == ep.Netns && (r.Interface ?? DefaultInterface) == ep.Interface
        && Ipv4Prefix.TryParseAddress(r.Address, out uint a) && a == ep.Address
        && (r.Mac is null ? EndpointMac.FromAddress(a) : MacAddress.TryParse(r.Mac, out var m) ? m : default) == ep.Mac;

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
            : existing.FirstOrDefault(n => !(n.FromConfig && def.FromConfig) && NetworkValidator.Overlaps(n.Subnet, def.Subnet)) is { } o ? $"its subnet {def.Subnet} overlaps network '{o.Name}''s"
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
        public NetworkDefinition Definition { get; set; } = definition;
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

/// <summary>An endpoint <see cref="NetworkManager.Resume"/> released instead of attaching it again.</summary>
/// <param name="Network">The name of its network.</param>
/// <param name="Endpoint">The released record.</param>
/// <param name="Reason">Why (its namespace is gone, or the data plane's refusal).</param>
public sealed record ReleasedEndpoint(string Network, EndpointRecord Endpoint, string Reason);
