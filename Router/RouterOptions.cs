using UserOverlay.Crypto;

namespace UserOverlay.Router;

/// <summary>
/// Everything one host's router needs in static mode. Build it in code (see samples/embed) or
/// let the CLI load it from YAML; <see cref="Validate"/> reports every problem with the property
/// path of the field (e.g. <c>Networks[1].Vni</c>) so a loader can point at the line that set it.
/// </summary>
public sealed record RouterOptions
{
    /// <summary>This host's VTEP: the underlay address the data path binds, and its UDP port (default 4789).</summary>
    public required VtepEndpoint Underlay { get; init; }

    /// <summary>Other VTEPs. VXLAN is accepted only from these addresses; broadcast and unknown unicast are replicated to them.</summary>
    public IReadOnlyList<VtepEndpoint> Peers { get; init; } = [];

    /// <summary>The overlay networks this host serves.</summary>
    public IReadOnlyList<NetworkOptions> Networks { get; init; } = [];

    /// <summary>Local endpoints: one TAP device each, created in the endpoint's network namespace.</summary>
    public IReadOnlyList<EndpointOptions> Endpoints { get; init; } = [];

    /// <summary>Static FDB entries (MAC → VTEP, optionally with the IP for proxy ARP).</summary>
    public IReadOnlyList<StaticFdbEntry> StaticFdb { get; init; } = [];

    /// <summary>Learn inner source MAC → outer source VTEP from received VXLAN (the kernel's "learning"). Default true.</summary>
    public bool Learning { get; init; } = true;

    /// <summary>Learned FDB and neighbour entries not refreshed for this long are removed (kernel vxlan default 300 s).</summary>
    public TimeSpan FdbAging { get; init; } = Constants.DefaultFdbAging;

    /// <summary>
    /// A learned remote FDB entry that has been sent to for this long with no frame back from its MAC, and nothing at all
    /// from its VTEP for as long, is removed: the VTEP has gone silent (its host stopped, or the endpoint moved), and the
    /// next frame floods to the peers so that the answer learns where the MAC lives now. A VTEP that sends anything
    /// keeps its entries; an entry nobody sends to just ages (<see cref="FdbAging"/>). Static, local and gossip entries
    /// never go this way. Default 5 s (removed 5–6 s after the first unanswered frame: the housekeeping runs every
    /// min(<see cref="FdbAging"/>/10, this/5)); <see cref="TimeSpan.Zero"/> turns it off. The cost: a one-way flow to a
    /// MAC that never answers (and whose VTEP sends nothing back) is flooded to every peer once the window passes,
    /// until the MAC next sends something (an ARP reply, at the latest when the sender's neighbour entry is re-probed).
    /// </summary>
    public TimeSpan UnansweredAging { get; init; } = Constants.DefaultUnansweredAging;

    /// <summary>The shortest <see cref="UnansweredAging"/> other than 0: shorter would remove entries whose answer is merely slow.</summary>
    public static readonly TimeSpan MinUnansweredAging = TimeSpan.FromMilliseconds(500);

    /// <summary>Frames per pipeline batch (recvmmsg/sendmmsg size, TAP drain size). Default <see cref="Constants.IdealBatchSize"/>.</summary>
    public int BatchSize { get; init; } = Constants.IdealBatchSize;

    /// <summary>
    /// Pipeline queues: workers, each with its own socket of an SO_REUSEPORT group and its own queue of every
    /// (multi-queue) TAP, worker i pinned to CPU i, each packet handled on the CPU it was sent or received on
    /// (bulk data, and a flood's small packets past 16 per millisecond, on the next one). 0, the default: one per CPU
    /// the process may use, up to 16. 1: one unpinned worker. Per-CPU queues cut the round-trip time of light
    /// traffic (no wake-up crosses CPUs) and share floods between the cores (see README). With several queues a
    /// flow's small and bulk packets — and a flood's — may take different workers and be reordered.
    /// </summary>
    public int Queues { get; init; }

    /// <summary>
    /// TAP offloads (IFF_VNET_HDR with checksum and TCP segmentation offload): endpoints hand over 64 KB
    /// TCP super-frames that the router segments itself, and received segments are coalesced back into
    /// super-frames — the wire never changes. Default true.
    /// </summary>
    public bool TapOffload { get; init; } = true;

    /// <summary>
    /// Batch each worker's TAP reads and writes through an io_uring: a round's frames cost one io_uring_enter instead
    /// of a read(2) or write(2) each. Default true. Where the kernel refuses io_uring (older than 5.6,
    /// kernel.io_uring_disabled, a container's seccomp profile) the router says so once in its log and uses a system
    /// call per frame, as with false.
    /// </summary>
    public bool IoUring { get; init; } = true;

    /// <summary>MTU of the underlay path between hosts (default 1500); networks' default inner MTUs derive from it.</summary>
    public int UnderlayMtu { get; init; } = 1500;

    /// <summary>Keys and ESP settings for networks marked <see cref="NetworkOptions.Encrypted"/>; required when any is.</summary>
    public EncryptionOptions? Encryption { get; init; }

    /// <summary>
    /// The inner MTU a network runs with: its configured <see cref="NetworkOptions.Mtu"/>, or by default the underlay
    /// MTU minus VXLAN's 50 bytes (1450 for 1500), and for an encrypted network minus ESP's as well
    /// (<see cref="EspOverhead.InnerMtu"/>, for 1500: 1408 with ESP-in-UDP, the default, and 1416 in transport mode).
    /// </summary>
    public int MtuOf(NetworkOptions network) =>
        network.Mtu ?? (network.Encrypted
            ? EspOverhead.InnerMtu(UnderlayMtu, Encryption?.Esp.Encapsulation ?? EspOptions.DefaultEncapsulation)
            : UnderlayMtu - Constants.VxlanOverhead);

    /// <summary>
    /// Checks the options; returns every problem found (empty when valid), each with the property path of
    /// the field (<see cref="OptionError.Path"/>).
    /// </summary>
    public IReadOnlyList<OptionError> Validate()
    {
        var errors = new List<OptionError>();
        if (Underlay.Address == 0) errors.Add(new("Underlay.Address", "is required (this host's VTEP address, e.g. 192.0.2.1)"));
        if (Underlay.Port == 0) errors.Add(new("Underlay.Port", "must be a UDP port from 1 to 65535"));
        var peerSet = new HashSet<uint>();
        for (int i = 0; i < Peers.Count; i++)
        {
            var p = Peers[i];
            if (p.Address == Underlay.Address) errors.Add(new($"Peers[{i}]", $"{VtepEndpoint.FormatAddress(p.Address)} is this host's own underlay address"));
            else if (!peerSet.Add(p.Address)) errors.Add(new($"Peers[{i}]", $"{VtepEndpoint.FormatAddress(p.Address)} is listed twice"));
            if (p.Port == 0) errors.Add(new($"Peers[{i}]", "port must be from 1 to 65535"));
        }
        if (BatchSize is < 1 or > 1024) errors.Add(new(nameof(BatchSize), "must be from 1 to 1024"));
        if (Queues is < 0 or > 64) errors.Add(new(nameof(Queues), "must be from 0 (one per CPU) to 64"));
        if (FdbAging <= TimeSpan.Zero) errors.Add(new(nameof(FdbAging), "must be positive"));
        if (UnansweredAging < TimeSpan.Zero || (UnansweredAging > TimeSpan.Zero && UnansweredAging < MinUnansweredAging))
            errors.Add(new(nameof(UnansweredAging), $"must be 0 (off) or at least {MinUnansweredAging.TotalMilliseconds:0} ms (got {UnansweredAging.TotalMilliseconds:0.###} ms)"));
        if (UnderlayMtu is < 576 or > 65535) errors.Add(new(nameof(UnderlayMtu), $"{UnderlayMtu} is out of range (576 to 65535)"));
        if (Encryption is { } enc)
        {
            try { enc.Esp.Validate(); }
            catch (ArgumentOutOfRangeException e)
            {
                errors.Add(new(e.ParamName is { Length: > 0 } p ? $"{nameof(Encryption)}.{nameof(enc.Esp)}.{p}" : nameof(Encryption), e.Message.Split(" (Parameter")[0]));
            }
        }

        var names = new Dictionary<string, int>(StringComparer.Ordinal);
        var vnis = new Dictionary<uint, int>();
        for (int i = 0; i < Networks.Count; i++)
        {
            var n = Networks[i];
            string at = $"Networks[{i}]";
            OptionRules.CheckNetwork(this, n, at, errors);
            if (!string.IsNullOrWhiteSpace(n.Name) && !names.TryAdd(n.Name, i))
                errors.Add(new($"{at}.Name", $"'{n.Name}' is already the name of Networks[{names[n.Name]}]"));
            if (n.Vni is not (0 or > Constants.MaxVni) && !vnis.TryAdd(n.Vni, i))
                errors.Add(new($"{at}.Vni", $"VNI {n.Vni} is already used by Networks[{vnis[n.Vni]}] ('{Networks[vnis[n.Vni]].Name}'); each network needs its own VNI"));
            OptionRules.CheckKeyDistinct(this, n, at, Networks.Take(i).Select((o, j) => (o, $"Networks[{j}] ('{o.Name}')")), errors);
        }

        var netByName = new Dictionary<string, NetworkOptions>(StringComparer.Ordinal);
        foreach (var n in Networks) if (n.Name is not null) netByName.TryAdd(n.Name, n);
        var ifaces = new Dictionary<(string, string), int>();
        var addrs = new Dictionary<(string, uint), int>();
        var macs = new Dictionary<(string, ulong), string>();
        for (int i = 0; i < Endpoints.Count; i++)
        {
            var e = Endpoints[i];
            string at = $"Endpoints[{i}]";
            if (!netByName.TryGetValue(e.Network ?? "", out var net))
                errors.Add(new($"{at}.Network", string.IsNullOrEmpty(e.Network) ? "is required" : $"'{e.Network}' is not one of the networks ({string.Join(", ", netByName.Keys)})"));
            int before = errors.Count;
            OptionRules.CheckEndpoint(e, net, at, errors);
            bool Fails(string field) => errors.Skip(before).Any(x => x.Path == $"{at}.{field}");
            if (OptionRules.IsInterfaceName(e.Interface) && !string.IsNullOrWhiteSpace(e.Netns) && !ifaces.TryAdd((e.Netns, e.Interface), i))
                errors.Add(new($"{at}.Interface", $"namespace '{e.Netns}' already gets an interface '{e.Interface}' from Endpoints[{ifaces[(e.Netns, e.Interface)]}]"));
            if (net is null) continue;
            if (!Fails("Address") && !addrs.TryAdd((net.Name, e.Address), i))
                errors.Add(new($"{at}.Address", $"{VtepEndpoint.FormatAddress(e.Address)} is already used by Endpoints[{addrs[(net.Name, e.Address)]}] on network '{net.Name}'"));
            var mac = e.EffectiveMac;
            if (!Fails("Mac") && !macs.TryAdd((net.Name, mac.Value), at))
                errors.Add(new($"{at}.Mac", $"{mac} is already used by {macs[(net.Name, mac.Value)]} on network '{net.Name}'"));
        }

        for (int i = 0; i < StaticFdb.Count; i++)
        {
            var s = StaticFdb[i];
            string at = $"StaticFdb[{i}]";
            if (!netByName.TryGetValue(s.Network ?? "", out var net))
                errors.Add(new($"{at}.Network", $"'{s.Network}' is not one of the networks"));
            if (s.Mac.IsMulticast || s.Mac.IsZero) errors.Add(new($"{at}.Mac", $"{s.Mac} is not a unicast MAC"));
            if (s.Vtep.Address == Underlay.Address) errors.Add(new($"{at}.Vtep", "points at this host; static entries name remote VTEPs"));
            if (net is not null && s.Address is uint ip && !net.Subnet.Contains(ip))
                errors.Add(new($"{at}.Address", $"{VtepEndpoint.FormatAddress(ip)} is outside network '{net.Name}' subnet {net.Subnet}"));
            if (net is not null && macs.TryGetValue((net.Name, s.Mac.Value), out string? owner))
                errors.Add(new($"{at}.Mac", $"{s.Mac} is a local endpoint's MAC ({owner})"));
        }
        return errors;
    }
}
