using System.Globalization;
using System.Text.Json;
using Microsoft.Extensions.Logging;
using UserOverlay.Cluster.Node;
using UserOverlay.Control.Networks;
using UserOverlay.Router;
using UserOverlay.Router.Netns;

namespace UserOverlay.Cli.Docker;

/// <summary>
/// Docker's remote network driver and IPAM driver over the daemon's <see cref="NetworkManager"/> (and, in a cluster,
/// the cluster's networks and address authority). Docker's ids map to UserOverlay's; the map persists
/// (<see cref="DockerPluginStore"/>). Transport-free: <see cref="DockerPluginServer"/> serves it on the plugin socket.
/// <list type="bullet">
/// <item>IPAM. RequestPool binds a subnet: <c>--subnet</c>, or the subnet of the network <c>--ipam-opt network=NAME</c>
/// names; a subnet that is an existing network's binds to that network, one overlapping another is refused.
/// RequestAddress answers the network's gateway for Docker's gateway request, and for an endpoint the address its
/// attach will take: the next free one (the cluster's reservation on a cluster network), remembered as pending so
/// that two requests never get one address.</item>
/// <item>CreateNetwork binds the Docker network to the UserOverlay network of its subnet, or creates one (in a
/// cluster, the cluster's) named by <c>-o name=NAME</c> (default docker-ID12: Docker tells a driver only the id) with
/// the other <c>-o</c> options (encrypted, key_file, mtu, vxlanid_list) and <c>--internal</c>. DeleteNetwork removes
/// what it created and unbinds the rest.</item>
/// <item>CreateEndpoint attaches the endpoint with Docker's address and a TAP made in the daemon's namespace
/// (<see cref="EndpointAttachRequest.HandOff"/>), named uo + 12 characters of Docker's id; Join answers that TAP as
/// SrcName (Docker moves it into the container and names it ethN) with <c>DisableGatewayService</c> (no
/// docker_gwbridge) and no gateway: as every UserOverlay endpoint, the container reaches its subnet only. Leave forgets
/// the sandbox; DeleteEndpoint detaches (the TAP closes, wherever it is).</item>
/// <item>After a restart (<see cref="Restore"/>), a joined endpoint's TAP, which went with the old process, is made
/// again inside the container's namespace, with its name there, address and MAC; an unjoined one again in the daemon's.</item>
/// </list>
/// Every operation is all-or-nothing: a refusal (<see cref="ControlException"/>) changes nothing. Thread-safety: one
/// operation at a time.
/// </summary>
internal sealed class DockerNetworkPlugin
{
    /// <summary>The driver's and the IPAM driver's name (the socket's name).</summary>
    public const string PluginName = "useroverlay";
    /// <summary>The address space of every pool (local and global alike: a network's scope is UserOverlay's).</summary>
    public const string AddressSpace = "useroverlay";
    /// <summary>The driver option naming the UserOverlay network (<c>-o name=NAME</c>; also <c>--ipam-opt network=NAME</c>).</summary>
    public const string NameOption = "name";
    /// <summary>The IPAM option naming the UserOverlay network whose subnet a pool takes.</summary>
    public const string NetworkOption = "network";
    /// <summary>The prefix of the interface name Docker gives the TAP in the container.</summary>
    public const string ContainerPrefix = "eth";

    private const string GenericOption = "com.docker.network.generic", InternalOption = "com.docker.network.internal",
        Ipv6Option = "com.docker.network.enable_ipv6", RequestTypeOption = "RequestAddressType", GatewayRequest = "com.docker.network.gateway";

    private readonly Func<NetworkManager> _networks;
    private readonly Func<ClusterNode?> _cluster;
    private readonly OverlayRouter? _router;
    private readonly DockerPluginStore _store;
    private readonly ILogger _log;
    private readonly SemaphoreSlim _lock = new(1, 1);
    private DockerPluginState _state;

    /// <summary>A plugin over <paramref name="networks"/>, keeping its state in <paramref name="stateDirectory"/>/docker.</summary>
    public DockerNetworkPlugin(Func<NetworkManager> networks, Func<ClusterNode?> cluster, OverlayRouter? router, string stateDirectory, ILogger log)
    {
        _networks = networks;
        _cluster = cluster;
        _router = router;
        _log = log;
        _store = new DockerPluginStore(Path.Combine(stateDirectory, "docker"));
        _state = _store.Load();
    }

    /// <summary>The state file.</summary>
    public string StatePath => _store.Path;

    private NetworkManager Manager => _networks();

    private ClusterNode? ActiveCluster => _cluster() is { Active: true } c ? c : null;

    // ---- IPAM ----

    /// <summary>IpamDriver.RequestPool.</summary>
    public async Task<RequestPoolResponse> RequestPoolAsync(RequestPoolRequest r)
    {
        await _lock.WaitAsync().ConfigureAwait(false);
        try
        {
            if (r.V6) throw ControlException.Invalid("ipv6", "UserOverlay networks are IPv4 only (create the network without --ipv6)");
            if (!string.IsNullOrEmpty(r.SubPool)) throw ControlException.Invalid("ip-range", "is not supported through Docker (give --ip-range to `useroverlay network create` and bind to that network)");
            string? named = r.Options?.GetValueOrDefault(NetworkOption);
            foreach (var key in r.Options?.Keys ?? Enumerable.Empty<string>())
                if (key != NetworkOption) throw ControlException.Invalid("ipam-opt", $"'{ControlException.Printable(key)}' is not an option of the useroverlay IPAM driver (known: {NetworkOption})");
            Ipv4Prefix subnet;
            if (named is not null)
            {
                var def = Manager.GetNetwork(named);
                subnet = def.Subnet;
                if (!string.IsNullOrEmpty(r.Pool) && ParseSubnet(r.Pool) != subnet)
                    throw ControlException.Invalid("subnet", $"{r.Pool} is not the subnet of network '{def.Name}' ({def.Subnet})");
            }
            else if (!string.IsNullOrEmpty(r.Pool)) subnet = ParseSubnet(r.Pool);
            else throw ControlException.Invalid("subnet", $"is required: give --subnet, or --ipam-opt {NetworkOption}=NAME to use the subnet of a UserOverlay network (Docker does not tell a plugin the network's name)");
            var bound = NetworkOfSubnet(subnet);
            if (bound is null && Manager.ListNetworks().FirstOrDefault(n => NetworkValidator.Overlaps(n.Subnet, subnet)) is { } overlap)
                throw ControlException.Conflicting("subnet", $"{subnet} overlaps {overlap.Subnet} of network '{overlap.Name}'");
            string poolId = PoolIdOf(subnet);
            if (_state.Pools.ContainsKey(poolId))
                throw ControlException.Conflicting("subnet", $"{subnet} is already a pool of another Docker network");
            var pool = new DockerPool(subnet.ToString(), new Dictionary<string, string>(StringComparer.Ordinal));
            Commit(s => s.Pools[poolId] = pool);
            return new RequestPoolResponse(poolId, subnet.ToString(), []);
        }
        finally { _lock.Release(); }
    }

    /// <summary>IpamDriver.ReleasePool: an unknown pool is released already.</summary>
    public async Task ReleasePoolAsync(ReleasePoolRequest r)
    {
        await _lock.WaitAsync().ConfigureAwait(false);
        try
        {
            string id = RequireText("PoolID", r.PoolID);
            if (!_state.Pools.TryGetValue(id, out var pool)) return;
            ReleasePending(pool, pool.Pending.Keys.ToList());
            Commit(s => s.Pools.Remove(id));
        }
        finally { _lock.Release(); }
    }

    /// <summary>IpamDriver.RequestAddress.</summary>
    public async Task<RequestAddressResponse> RequestAddressAsync(RequestAddressRequest r)
    {
        await _lock.WaitAsync().ConfigureAwait(false);
        try
        {
            var (poolId, pool, subnet) = RequirePool(r.PoolID);
            uint? wanted = string.IsNullOrEmpty(r.Address) ? null : ParseAddress("ip", r.Address, subnet);
            var def = NetworkOfSubnet(subnet);
            if (r.Options?.GetValueOrDefault(RequestTypeOption) == GatewayRequest)
            {
                // The gateway is the network's (the router answers for it): an existing network's, or the one to be made.
                uint gateway = def?.Gateway ?? wanted ?? subnet.Network + 1;
                if (def is not null && wanted is uint w && w != def.Gateway)
                    throw ControlException.Invalid("gateway", $"{r.Address} is not the gateway of network '{def.Name}' ({(def.Gateway is uint g ? VtepEndpoint.FormatAddress(g) : "none")})");
                return new RequestAddressResponse(Cidr(gateway, subnet), []);
            }
            if (def is null)
                throw new ControlException(ControlErrorCodes.NotFound, $"network: no UserOverlay network has the subnet {subnet} yet", "network");
            var pending = pool.Pending.Keys.Select(a => Ipv4Prefix.TryParseAddress(a, out uint x) ? x : 0).ToHashSet();
            string id = ObjectIds.New();
            uint address;
            if (def.Scope == NetworkManager.SwarmScope)
            {
                // The cluster's IPAM chooses (or checks the given address), under the id the endpoint will attach with.
                var authority = Manager.AddressAuthority ?? throw new ControlException(ControlErrorCodes.Unavailable,
                    $"network: '{def.Name}' is the cluster's, and this host is not connected to the cluster now; retry once it is", "network");
                address = authority.Reserve(def, id, "docker-" + id[..12], wanted, null).Address;
            }
            else if (wanted is uint given)
            {
                if (pending.Contains(given) || Manager.GetEndpoints(def.Id).Any(e => e.Address == given))
                    throw ControlException.Conflicting("ip", $"{r.Address} is already in use on network '{def.Name}'");
                address = given;
            }
            else address = Manager.ProposeAddress(def.Id, pending);
            try { Commit(_ => pool.Pending[VtepEndpoint.FormatAddress(address)] = id); }
            catch
            {
                if (def.Scope == NetworkManager.SwarmScope) Manager.AddressAuthority?.Release(def, id);
                throw;
            }
            return new RequestAddressResponse(Cidr(address, subnet), []);
        }
        finally { _lock.Release(); }
    }

    /// <summary>IpamDriver.ReleaseAddress: an address no longer pending (an endpoint took it and was deleted, or the gateway) is released already.</summary>
    public async Task ReleaseAddressAsync(ReleaseAddressRequest r)
    {
        await _lock.WaitAsync().ConfigureAwait(false);
        try
        {
            var (_, pool, subnet) = RequirePool(r.PoolID);
            string address = VtepEndpoint.FormatAddress(ParseAddress("ip", RequireText("Address", r.Address), subnet));
            if (!pool.Pending.ContainsKey(address)) return;
            ReleasePending(pool, [address]);
            Commit(_ => pool.Pending.Remove(address));
        }
        finally { _lock.Release(); }
    }

    // ---- network driver ----

    /// <summary>NetworkDriver.CreateNetwork: binds to the network of the pool's subnet, or creates it. Repeating a creation is harmless.</summary>
    public async Task CreateNetworkAsync(CreateNetworkRequest r)
    {
        await _lock.WaitAsync().ConfigureAwait(false);
        try
        {
            string dockerId = RequireId("NetworkID", r.NetworkID);
            if (_state.Networks.ContainsKey(dockerId)) return;
            if (r.IPv6Data is { Count: > 0 }) throw ControlException.Invalid("ipv6", "UserOverlay networks are IPv4 only");
            if (r.IPv4Data is not { Count: 1 } v4)
                throw ControlException.Invalid("subnet", $"the network needs exactly one IPv4 subnet (Docker gave {r.IPv4Data?.Count ?? 0})");
            var data = v4[0];
            if (data.AddressSpace != AddressSpace)
                throw ControlException.Invalid("ipam-driver", $"the network's addresses must come from UserOverlay: create it with --ipam-driver {PluginName} (its address space is '{ControlException.Printable(data.AddressSpace)}')");
            var subnet = ParseSubnet(data.Pool);
            uint? gateway = string.IsNullOrEmpty(data.Gateway) ? null : ParseAddress("gateway", data.Gateway.Split('/')[0], subnet);
            var (name, options) = DriverOptions(r.Options);
            bool isInternal = Flag(r.Options, InternalOption);
            if (Flag(r.Options, Ipv6Option)) throw ControlException.Invalid("ipv6", "UserOverlay networks are IPv4 only");
            if (data.AuxAddresses is { Count: > 0 }) throw ControlException.Invalid("aux-address", "is not supported through Docker (give --aux-address to `useroverlay network create` and bind to that network)");

            var existing = NetworkOfSubnet(subnet);
            if (existing is not null)
            {
                if (name is not null && name != existing.Name)
                    throw ControlException.Conflicting("name", $"the subnet {subnet} is network '{existing.Name}''s, not '{name}'");
                if (options.ContainsKey(NetworkValidator.EncryptedOption) && !existing.Encrypted)
                    throw ControlException.Conflicting("opt", $"network '{existing.Name}' is not encrypted (it cannot be made so: create another)");
                if (gateway is uint g && g != existing.Gateway)
                    throw ControlException.Conflicting("gateway", $"{VtepEndpoint.FormatAddress(g)} is not the gateway of network '{existing.Name}'");
                Commit(s => s.Networks[dockerId] = new DockerNetworkRecord(existing.Id, Created: false));
                DockerLog.NetworkBound(_log, ObjectIds.Short(dockerId), existing.Name);
                return;
            }
            var request = new NetworkCreateRequest
            {
                Name = name ?? "docker-" + dockerId[..12],
                Subnet = subnet.ToString(),
                Gateway = gateway is uint gw ? VtepEndpoint.FormatAddress(gw) : null,
                Internal = isInternal,
                Attachable = true,
                Options = options,
                Labels = new Dictionary<string, string>(StringComparer.Ordinal) { ["com.docker.network.id"] = dockerId },
            };
            var cluster = ActiveCluster;
            var def = cluster is not null
                ? await cluster.CreateNetworkAsync(request, CancellationToken.None).ConfigureAwait(false)
                : Manager.CreateNetwork(request);
            try { Commit(s => s.Networks[dockerId] = new DockerNetworkRecord(def.Id, Created: true)); }
            catch
            {
                await RemoveNetworkAsync(def).ConfigureAwait(false);
                throw;
            }
            DockerLog.NetworkCreated(_log, ObjectIds.Short(dockerId), def.Name, def.Subnet.ToString());
        }
        finally { _lock.Release(); }
    }

    /// <summary>NetworkDriver.DeleteNetwork: removes the network the plugin created; an unknown id is deleted already.</summary>
    public async Task DeleteNetworkAsync(NetworkIdRequest r)
    {
        await _lock.WaitAsync().ConfigureAwait(false);
        try
        {
            string dockerId = RequireId("NetworkID", r.NetworkID);
            if (!_state.Networks.TryGetValue(dockerId, out var net)) return;
            if (_state.Endpoints.Values.Any(e => e.DockerNetworkId == dockerId))
                throw new ControlException(ControlErrorCodes.InUse, "network: Docker endpoints are still on it; remove them first", "network");
            if (net.Created && Manager.ListNetworks().FirstOrDefault(n => n.Id == net.NetworkId) is { } def)
                await RemoveNetworkAsync(def).ConfigureAwait(false);
            Commit(s => s.Networks.Remove(dockerId));
        }
        finally { _lock.Release(); }
    }

    /// <summary>NetworkDriver.CreateEndpoint: attaches with Docker's address, the TAP waiting in the daemon's namespace for Join.</summary>
    public async Task<CreateEndpointResponse> CreateEndpointAsync(CreateEndpointRequest r)
    {
        await _lock.WaitAsync().ConfigureAwait(false);
        try
        {
            string dockerNet = RequireId("NetworkID", r.NetworkID);
            string dockerEp = RequireId("EndpointID", r.EndpointID);
            var net = RequireNetwork(dockerNet);
            var def = Manager.GetNetwork(net.NetworkId);
            if (!string.IsNullOrEmpty(r.Interface?.AddressIPv6)) throw ControlException.Invalid("ipv6", "UserOverlay networks are IPv4 only");
            if (string.IsNullOrEmpty(r.Interface?.Address))
                throw ControlException.Invalid("ip", $"Docker gave the endpoint no IPv4 address: create the network with --ipam-driver {PluginName}");
            string[] cidr = r.Interface.Address.Split('/');
            uint address = ParseAddress("ip", cidr[0], def.Subnet);
            if (cidr.Length != 2 || cidr[1] != def.Subnet.Length.ToString(CultureInfo.InvariantCulture))
                throw ControlException.Invalid("ip", $"'{ControlException.Printable(r.Interface.Address)}' does not have the subnet's prefix length /{def.Subnet.Length}");
            if (_state.Endpoints.TryGetValue(dockerEp, out var known))
            {
                var ep = FindEndpoint(known);
                if (known.DockerNetworkId == dockerNet && ep?.Address == address) return Answer(r, ep);
                throw ControlException.Conflicting("EndpointID", $"endpoint {ObjectIds.Short(dockerEp)} exists already with another network or address");
            }
            // The address RequestAddress promised, under the id it was promised with (the cluster's reservation's).
            string poolId = PoolIdOf(def.Subnet);
            string dotted = VtepEndpoint.FormatAddress(address);
            string? promisedId = _state.Pools.TryGetValue(poolId, out var pool) ? pool.Pending.GetValueOrDefault(dotted) : null;
            var attached = Manager.Attach(new EndpointAttachRequest
            {
                Network = def.Id,
                Netns = "docker:" + dockerEp,
                Name = "docker-" + dockerEp[..12],
                Interface = TapName(dockerEp),
                Address = dotted,
                Mac = r.Interface.MacAddress is { Length: > 0 } mac ? mac : null,
                Id = promisedId,
                HandOff = true,
            });
            try
            {
                Commit(s =>
                {
                    s.Endpoints[dockerEp] = new DockerEndpointRecord(dockerNet, attached.Id, null, null);
                    pool?.Pending.Remove(dotted);
                });
            }
            catch
            {
                Manager.Detach(def.Id, attached.Id);
                throw;
            }
            DockerLog.EndpointCreated(_log, ObjectIds.Short(dockerEp), def.Name, dotted, attached.Mac.ToString());
            return Answer(r, attached);
        }
        finally { _lock.Release(); }

        static CreateEndpointResponse Answer(CreateEndpointRequest r, EndpointRecord ep) =>
            new(string.IsNullOrEmpty(r.Interface?.MacAddress) ? new EndpointInterface { MacAddress = ep.Mac.ToString() } : null);
    }

    /// <summary>NetworkDriver.DeleteEndpoint: detaches (the TAP closes wherever it is) and forgets the endpoint.</summary>
    public async Task DeleteEndpointAsync(EndpointIdRequest r)
    {
        await _lock.WaitAsync().ConfigureAwait(false);
        try
        {
            var (dockerEp, rec) = RequireEndpoint(r);
            var net = RequireNetwork(rec.DockerNetworkId);
            if (FindEndpoint(rec) is not null) Manager.Detach(net.NetworkId, rec.EndpointId);
            Commit(s => s.Endpoints.Remove(dockerEp));
            DockerLog.EndpointDeleted(_log, ObjectIds.Short(dockerEp));
        }
        finally { _lock.Release(); }
    }

    /// <summary>NetworkDriver.Join: answers the TAP for Docker to move into the sandbox. A second Join is refused.</summary>
    public async Task<JoinResponse> JoinAsync(JoinRequest r)
    {
        await _lock.WaitAsync().ConfigureAwait(false);
        try
        {
            var (dockerEp, rec) = RequireEndpoint(new EndpointIdRequest { NetworkID = r.NetworkID, EndpointID = r.EndpointID });
            string sandbox = RequireText("SandboxKey", r.SandboxKey);
            if (rec.SandboxKey is not null)
                throw ControlException.Conflicting("EndpointID", $"endpoint {ObjectIds.Short(dockerEp)} is joined to {rec.SandboxKey} already; leave it first");
            var ep = FindEndpoint(rec) ?? throw new ControlException(ControlErrorCodes.NotFound, $"EndpointID: the network of endpoint {ObjectIds.Short(dockerEp)} no longer has it", "EndpointID");
            if (!ep.HandOff)
                throw ControlException.Conflicting("EndpointID", $"endpoint {ObjectIds.Short(dockerEp)} is already inside a container ({ep.Netns})");
            Commit(s => s.Endpoints[dockerEp] = rec with { SandboxKey = sandbox, ContainerInterface = null });
            return new JoinResponse { InterfaceName = new InterfaceName(ep.Interface, ContainerPrefix) };
        }
        finally { _lock.Release(); }
    }

    /// <summary>NetworkDriver.Leave: the sandbox is forgotten (the TAP stays until DeleteEndpoint). Leaving twice is harmless.</summary>
    public async Task LeaveAsync(EndpointIdRequest r)
    {
        await _lock.WaitAsync().ConfigureAwait(false);
        try
        {
            var (dockerEp, rec) = RequireEndpoint(r);
            if (rec.SandboxKey is null) return;
            Commit(s => s.Endpoints[dockerEp] = rec with { SandboxKey = null });
        }
        finally { _lock.Release(); }
    }

    /// <summary>NetworkDriver.EndpointOperInfo: what the endpoint is; also notes the TAP's name inside the container.</summary>
    public async Task<EndpointInfoResponse> EndpointInfoAsync(EndpointIdRequest r)
    {
        await _lock.WaitAsync().ConfigureAwait(false);
        try
        {
            var (dockerEp, rec) = RequireEndpoint(r);
            var net = RequireNetwork(rec.DockerNetworkId);
            var def = Manager.GetNetwork(net.NetworkId);
            var ep = FindEndpoint(rec);
            var value = new Dictionary<string, string>(StringComparer.Ordinal)
            {
                ["useroverlay.network"] = def.Name,
                ["useroverlay.endpoint"] = rec.EndpointId,
            };
            if (ep is not null)
            {
                value["useroverlay.address"] = $"{VtepEndpoint.FormatAddress(ep.Address)}/{ep.PrefixLength}";
                value["useroverlay.mac"] = ep.Mac.ToString();
                string? now = _router?.InterfaceNameOf(def.Name, ep.Netns, ep.Interface) ?? (ep.HandOff ? null : ep.Interface);
                if (now is not null) value["useroverlay.interface"] = now;
                if (rec.SandboxKey is not null && now is not null && now != ep.Interface && now != rec.ContainerInterface)
                {
                    try { Commit(s => s.Endpoints[dockerEp] = rec with { ContainerInterface = now }); }
                    catch (ControlException e) { DockerLog.RestoreFailed(_log, ObjectIds.Short(dockerEp), e.Message); }
                }
            }
            return new EndpointInfoResponse(value);
        }
        finally { _lock.Release(); }
    }

    /// <summary>DiscoverNew, DiscoverDelete, ProgramExternalConnectivity, RevokeExternalConnectivity: nothing to do (no NAT, no port mapping).</summary>
    public static Task NothingAsync() => Task.CompletedTask;

    // ---- restart ----

    /// <summary>
    /// Brings Docker's endpoints back after the daemon restarted (their TAPs closed with the old process): a joined
    /// endpoint whose container namespace still exists is attached again inside it, under its name there (noted by
    /// EndpointOperInfo; else the first free ethN), with its address and MAC; an unjoined one gets its TAP again in the
    /// daemon's namespace for Join. One that cannot be restored is logged and left for Docker to delete.
    /// </summary>
    public void Restore()
    {
        _lock.Wait();
        try
        {
            foreach (var (dockerEp, rec) in _state.Endpoints.ToList())
            {
                var ep = FindEndpoint(rec);
                if (ep is null || !_state.Networks.TryGetValue(rec.DockerNetworkId, out var net)) continue;
                if (!ep.HandOff && _router?.InterfaceNameOf(Manager.GetNetwork(net.NetworkId).Name, ep.Netns, ep.Interface) is not null) continue; // served
                try
                {
                    if (rec.SandboxKey is { } sandbox && Namespaces.Exists(sandbox))
                    {
                        if (!ep.HandOff) continue; // NetworkManager.Resume attached it in the container already
                        Reattach(net, ep, sandbox, rec.ContainerInterface);
                    }
                    else if (rec.SandboxKey is null && ep.HandOff) Reattach(net, ep, null, null);
                    else DockerLog.RestoreFailed(_log, ObjectIds.Short(dockerEp), $"its container's namespace {rec.SandboxKey ?? ep.Netns} is gone");
                }
                catch (Exception e) when (e is ControlException or RouterException or IOException)
                {
                    DockerLog.RestoreFailed(_log, ObjectIds.Short(dockerEp), e.Message);
                }
            }
        }
        finally { _lock.Release(); }
    }

    // Detach the stored record (no TAP behind it) and attach it again with the same id, address and MAC: in the sandbox,
    // or handed off again.
    private void Reattach(DockerNetworkRecord net, EndpointRecord ep, string? sandbox, string? containerInterface)
    {
        var m = Manager;
        m.Detach(net.NetworkId, ep.Id);
        var request = new EndpointAttachRequest
        {
            Network = net.NetworkId,
            Netns = sandbox ?? ep.Netns,
            Name = ep.Name,
            Address = VtepEndpoint.FormatAddress(ep.Address),
            Mac = ep.Mac.ToString(),
            Id = ep.Id,
            Aliases = ep.Aliases,
            HandOff = sandbox is null,
            Interface = sandbox is null ? ep.Interface : containerInterface,
        };
        if (sandbox is null || containerInterface is not null)
        {
            m.Attach(request);
            return;
        }
        for (int i = 0; ; i++)
        {
            try
            {
                m.Attach(request with { Interface = ContainerPrefix + i.ToString(CultureInfo.InvariantCulture) });
                return;
            }
            catch (ControlException e) when (e.Code == ControlErrorCodes.Conflict && e.Field == "interface" && i < 15) { }
        }
    }

    // ---- helpers ----

    private async Task RemoveNetworkAsync(NetworkDefinition def)
    {
        if (def.Scope == NetworkManager.SwarmScope && ActiveCluster is { } cluster) await cluster.RemoveNetworkAsync(def.Id, CancellationToken.None).ConfigureAwait(false);
        else Manager.RemoveNetwork(def.Id);
    }

    private void ReleasePending(DockerPool pool, IReadOnlyList<string> addresses)
    {
        if (!Ipv4Prefix.TryParse(pool.Subnet, out var subnet, out _) || NetworkOfSubnet(subnet) is not { Scope: NetworkManager.SwarmScope } def) return;
        foreach (string a in addresses)
            if (pool.Pending.TryGetValue(a, out string? id)) Manager.AddressAuthority?.Release(def, id);
    }

    private NetworkDefinition? NetworkOfSubnet(Ipv4Prefix subnet) => Manager.ListNetworks().FirstOrDefault(n => n.Subnet == subnet);

    private EndpointRecord? FindEndpoint(DockerEndpointRecord rec)
    {
        if (!_state.Networks.TryGetValue(rec.DockerNetworkId, out var net)) return null;
        try { return Manager.GetEndpoints(net.NetworkId).FirstOrDefault(e => e.Id == rec.EndpointId); }
        catch (ControlException e) when (e.Code == ControlErrorCodes.NotFound) { return null; }
    }

    private DockerNetworkRecord RequireNetwork(string dockerId) =>
        _state.Networks.TryGetValue(dockerId, out var n) ? n
            : throw new ControlException(ControlErrorCodes.NotFound, $"NetworkID: {ObjectIds.Short(dockerId)} is not a network of this driver", "NetworkID");

    private (string Id, DockerEndpointRecord Record) RequireEndpoint(EndpointIdRequest r)
    {
        string dockerNet = RequireId("NetworkID", r.NetworkID);
        string dockerEp = RequireId("EndpointID", r.EndpointID);
        if (!_state.Endpoints.TryGetValue(dockerEp, out var rec) || rec.DockerNetworkId != dockerNet)
            throw new ControlException(ControlErrorCodes.NotFound, $"EndpointID: {ObjectIds.Short(dockerEp)} is not an endpoint of network {ObjectIds.Short(dockerNet)}", "EndpointID");
        return (dockerEp, rec);
    }

    private (string Id, DockerPool Pool, Ipv4Prefix Subnet) RequirePool(string? poolId)
    {
        string id = RequireText("PoolID", poolId);
        if (!_state.Pools.TryGetValue(id, out var pool) || !Ipv4Prefix.TryParse(pool.Subnet, out var subnet, out _))
            throw new ControlException(ControlErrorCodes.NotFound, $"PoolID: '{ControlException.Printable(id)}' is not a pool of this driver", "PoolID");
        return (id, pool, subnet);
    }

    // The -o options: name is the plugin's, the rest the overlay driver's (validated by NetworkValidator).
    private static (string? Name, Dictionary<string, string> Options) DriverOptions(Dictionary<string, JsonElement>? options)
    {
        var result = new Dictionary<string, string>(StringComparer.Ordinal);
        string? name = null;
        if (options is null || !options.TryGetValue(GenericOption, out var generic) || generic.ValueKind == JsonValueKind.Null) return (null, result);
        if (generic.ValueKind != JsonValueKind.Object) throw ControlException.Invalid("opt", $"{GenericOption} is not an object");
        foreach (var p in generic.EnumerateObject())
        {
            string value = p.Value.ValueKind switch
            {
                JsonValueKind.String => p.Value.GetString()!,
                JsonValueKind.True => "true",
                JsonValueKind.Number => p.Value.GetRawText(),
                _ => throw ControlException.Invalid("opt", $"'{ControlException.Printable(p.Name)}' has a value that is not text"),
            };
            if (p.Name == NameOption) name = value;
            else result[p.Name] = value;
        }
        return (name, result);
    }

    private static bool Flag(Dictionary<string, JsonElement>? options, string key) =>
        options is not null && options.TryGetValue(key, out var v) && (v.ValueKind == JsonValueKind.True || v.ValueKind == JsonValueKind.String && v.GetString() == "true");

    /// <summary>The PoolID of a subnet: stable, so a restarted daemon answers Docker's PoolIDs.</summary>
    public static string PoolIdOf(Ipv4Prefix subnet) => $"{AddressSpace}/{subnet}";

    /// <summary>The TAP's name in the daemon's namespace before Docker moves it: uo + 12 characters of Docker's endpoint id.</summary>
    public static string TapName(string dockerEndpointId) => "uo" + dockerEndpointId[..12];

    private static string Cidr(uint address, Ipv4Prefix subnet) => $"{VtepEndpoint.FormatAddress(address)}/{subnet.Length.ToString(CultureInfo.InvariantCulture)}";

    private static Ipv4Prefix ParseSubnet(string? text)
    {
        if (!Ipv4Prefix.TryParse(text ?? "", out var subnet, out string why)) throw ControlException.Invalid("subnet", why);
        if (subnet.Length is < Control.Ipam.AddressPool.MinPrefixLength or > Control.Ipam.AddressPool.MaxPrefixLength)
            throw ControlException.Invalid("subnet", $"{subnet} is /{subnet.Length}; use /{Control.Ipam.AddressPool.MinPrefixLength} to /{Control.Ipam.AddressPool.MaxPrefixLength}");
        return subnet;
    }

    private static uint ParseAddress(string field, string text, Ipv4Prefix subnet)
    {
        if (!Ipv4Prefix.TryParseAddress(text, out uint a)) throw ControlException.Invalid(field, $"'{ControlException.Printable(text)}' is not an IPv4 address");
        if (!subnet.Contains(a)) throw ControlException.Invalid(field, $"{text} is outside the subnet {subnet}");
        return a;
    }

    private static string RequireText(string field, string? value) =>
        string.IsNullOrEmpty(value) || value.Any(char.IsControl) ? throw ControlException.Invalid(field, "is required") : value;

    private static string RequireId(string field, string? value) =>
        ObjectIds.IsValid(value) ? value! : throw ControlException.Invalid(field, $"'{ControlException.Printable(value)}' is not a Docker id (64 lowercase hex characters)");

    // Applies a change to the state and writes it; if the write fails, the state is as it was.
    private void Commit(Action<DockerPluginState> change)
    {
        byte[] before = JsonSerializer.SerializeToUtf8Bytes(_state, DockerPluginJson.Default.DockerPluginState);
        try
        {
            change(_state);
            _store.Save(_state);
        }
        catch
        {
            _state = JsonSerializer.Deserialize(before, DockerPluginJson.Default.DockerPluginState)!;
            throw;
        }
    }
}

/// <summary>The Docker plugin's log events (category useroverlay.docker; IDs 200–219).</summary>
internal static partial class DockerLog
{
    [LoggerMessage(200, LogLevel.Information, "Docker plugin serving on {Socket} (network and IPAM driver '{Name}')")]
    public static partial void Serving(ILogger logger, string socket, string name);

    [LoggerMessage(201, LogLevel.Information, "Docker network {DockerId} bound to network '{Network}'")]
    public static partial void NetworkBound(ILogger logger, string dockerId, string network);

    [LoggerMessage(202, LogLevel.Information, "Docker network {DockerId} created network '{Network}' ({Subnet})")]
    public static partial void NetworkCreated(ILogger logger, string dockerId, string network, string subnet);

    [LoggerMessage(203, LogLevel.Information, "Docker endpoint {DockerId} attached to network '{Network}' as {Address}, MAC {Mac}")]
    public static partial void EndpointCreated(ILogger logger, string dockerId, string network, string address, string mac);

    [LoggerMessage(204, LogLevel.Information, "Docker endpoint {DockerId} deleted")]
    public static partial void EndpointDeleted(ILogger logger, string dockerId);

    [LoggerMessage(205, LogLevel.Warning, "Docker endpoint {DockerId} not restored: {Reason}")]
    public static partial void RestoreFailed(ILogger logger, string dockerId, string reason);

    [LoggerMessage(207, LogLevel.Warning, "Not serving the Docker plugin: another process serves {Socket} (give up --docker-plugin=PATH for a socket of this router's own, or off)")]
    public static partial void NotServing(ILogger logger, string socket);

    [LoggerMessage(208, LogLevel.Warning, "Not serving the Docker plugin on {Socket}: {Reason} (give --docker-plugin=PATH or off)")]
    public static partial void CannotServe(ILogger logger, string socket, string reason);

    [LoggerMessage(206, LogLevel.Warning, "Docker plugin request {Method} refused: {Reason}")]
    public static partial void Refused(ILogger logger, string method, string reason);
}
