using System.Net;
using UserOverlay.Router;
using YamlDotNet.RepresentationModel;

namespace UserOverlay.Cli.Config;

/// <summary>
/// Loads the YAML configuration of <c>useroverlay up</c>. Every problem is reported at once with
/// file, line, field path and a sentence saying what is wrong — syntax, unknown fields, bad
/// values, and the router's own validation (duplicate VNI, address outside the subnet…) mapped
/// back to the line that declared the field. Also checks that endpoint namespaces exist.
/// </summary>
public static class ConfigLoader
{
    /// <summary>Loads and validates <paramref name="path"/>; throws <see cref="ConfigException"/> listing every error.</summary>
    public static HostConfig Load(string path, bool checkNamespaces = true)
    {
        string full = Path.GetFullPath(path);
        string text;
        try
        {
            text = System.IO.File.ReadAllText(full);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new ConfigException([new ConfigError(path, 0, 0, "(file)", e is FileNotFoundException or DirectoryNotFoundException ? "no such file" : e.Message)]);
        }
        return Parse(text, path, checkNamespaces);
    }

    /// <summary>Parses configuration text; <paramref name="file"/> is used in error messages.</summary>
    public static HostConfig Parse(string text, string file, bool checkNamespaces = true)
    {
        var r = new YamlReader(file);
        var root = r.Parse(text);
        if (root is null) throw new ConfigException(r.Errors);

        var top = r.Fields(root, "", "underlay", "peers", "gossip", "encryption", "metrics", "learning", "fdb_aging", "fdb_unanswered", "batch_size", "queues", "offload", "io_uring", "networks", "endpoints", "fdb", "dns");

        // underlay
        uint underlayAddress = 0;
        int underlayPort = Constants.VxlanPort;
        int underlayMtu = 1500;
        if (!top.TryGetValue("underlay", out var underlayNode)) r.ErrorMissing("", "underlay");
        else if (r.Mapping(underlayNode, "underlay") is { } um)
        {
            var u = r.Fields(um, "underlay", "address", "port", "mtu");
            string? a = r.String(u, "address", "underlay", required: true);
            if (a is not null && !Ipv4Prefix.TryParseAddress(a, out underlayAddress))
                r.Error(u["address"], "underlay.address", $"'{a}' is not an IPv4 address");
            underlayPort = (int)(r.Integer(u, "port", "underlay", false, 1, 65535) ?? Constants.VxlanPort);
            underlayMtu = (int)(r.Integer(u, "mtu", "underlay", false, 576, 65535) ?? 1500);
        }

        // peers
        var peers = new List<VtepEndpoint>();
        if (top.TryGetValue("peers", out var peersNode))
        {
            var items = r.Sequence(peersNode, "peers");
            for (int i = 0; i < items.Count; i++)
            {
                string at = $"peers[{i}]";
                string? s = r.Scalar(items[i], at);
                if (s is null) continue;
                if (TryParseHostPort(s, underlayPort, out var ep, out string err)) peers.Add(ep);
                else r.Error(items[i], at, err);
            }
        }

        // gossip (Cli/Config/GossipConfig.cs): peers become optional, learning defaults to off
        var gossip = GossipSection.Parse(r, top, file, underlayAddress, underlayPort);

        IPEndPoint? metrics = null;
        if (top.TryGetValue("metrics", out var metricsNode) && r.Scalar(metricsNode, "metrics") is { Length: > 0 } ms)
        {
            if (!IPEndPoint.TryParse(ms, out metrics) || metrics.Port == 0)
                r.Error(metricsNode, "metrics", $"'{ms}' is not an address:port (e.g. 127.0.0.1:9464)");
        }

        bool learning = r.Boolean(top, "learning", "") ?? !top.ContainsKey("gossip");
        TimeSpan aging = r.Duration(top, "fdb_aging", "") ?? Constants.DefaultFdbAging;
        TimeSpan unanswered = r.Duration(top, "fdb_unanswered", "", allowOff: true) ?? Constants.DefaultUnansweredAging;
        int batch = (int)(r.Integer(top, "batch_size", "", false, 1, 1024) ?? Constants.IdealBatchSize);
        int queues = (int)(r.Integer(top, "queues", "", false, 0, 64) ?? 0);
        bool offload = r.Boolean(top, "offload", "") ?? true;
        bool ioUring = r.Boolean(top, "io_uring", "") ?? true;

        // dns (Cli/Config/DnsSection.cs): the gateways' DNS responder and its upstreams
        var dns = DnsSection.Parse(r, top);

        // encryption (Cli/Config/EncryptionConfig.cs): the ESP settings; each encrypted network brings its key
        var encryption = EncryptionSection.Parse(r, top);

        // networks
        var networks = new List<NetworkOptions>();
        if (top.TryGetValue("networks", out var netsNode))
        {
            var items = r.Sequence(netsNode, "networks");
            for (int i = 0; i < items.Count; i++)
            {
                string at = $"networks[{i}]";
                if (r.Mapping(items[i], at) is not { } nm) continue;
                var f = r.Fields(nm, at, "name", "vni", "subnet", "gateway", "internal", "mtu", "encrypted", "key", "key_file");
                string? name = r.String(f, "name", at, true);
                long? vni = r.Integer(f, "vni", at, true, 1, Constants.MaxVni);
                string? subnet = r.String(f, "subnet", at, true);
                long? mtu = r.Integer(f, "mtu", at, false, 576, Constants.MaxMtu);
                bool encrypted = EncryptionSection.ParseNetwork(r, f, at, name, encryption);
                bool isInternal = r.Boolean(f, "internal", at) ?? false;
                string? gatewayText = r.String(f, "gateway", at, false);
                uint? gateway = null;
                if (gatewayText is not null)
                {
                    if (Ipv4Prefix.TryParseAddress(gatewayText, out uint g)) gateway = g;
                    else r.Error(f["gateway"], $"{at}.gateway", $"'{gatewayText}' is not an IPv4 address");
                }
                Ipv4Prefix prefix = default;
                if (subnet is not null && !Ipv4Prefix.TryParse(subnet, out prefix, out string err))
                {
                    r.Error(f["subnet"], $"{at}.subnet", err);
                    subnet = null;
                }
                if (name is null || vni is null || subnet is null) continue;
                // A file's network has a gateway only when it names one: files written before gateways existed keep
                // working, an endpoint at the first usable address included (`network create` defaults to that address).
                networks.Add(new NetworkOptions
                {
                    Name = name,
                    Vni = (uint)vni,
                    Subnet = prefix,
                    Mtu = (int?)mtu,
                    Encrypted = encrypted,
                    Gateway = gateway,
                    Internal = isInternal,
                });
            }
        }
        // No networks: a router waiting to be told (network create, or a cluster's managers).

        // endpoints
        var endpoints = new List<EndpointOptions>();
        var endpointIndex = new List<int>(); // endpoints[i] in the file → index in the list (for error paths)
        if (top.TryGetValue("endpoints", out var epsNode))
        {
            var items = r.Sequence(epsNode, "endpoints");
            for (int i = 0; i < items.Count; i++)
            {
                string at = $"endpoints[{i}]";
                if (r.Mapping(items[i], at) is not { } em) continue;
                var f = r.Fields(em, at, "network", "netns", "interface", "address", "mac");
                string? network = r.String(f, "network", at, true);
                string? netns = r.String(f, "netns", at, true);
                string iface = r.String(f, "interface", at, false) ?? "eth0";
                string? address = r.String(f, "address", at, true);
                string? macText = r.String(f, "mac", at, false);
                Ipv4Prefix addr = default;
                if (address is not null && !Ipv4Prefix.TryParse(address, out addr, out string err, allowHostBits: true))
                {
                    r.Error(f["address"], $"{at}.address", err);
                    address = null;
                }
                MacAddress? mac = null;
                if (macText is not null)
                {
                    if (MacAddress.TryParse(macText, out var m)) mac = m;
                    else { r.Error(f["mac"], $"{at}.mac", $"'{macText}' is not a MAC address (six hex octets, e.g. 02:00:c6:12:00:0b)"); continue; }
                }
                if (network is null || netns is null || address is null) continue;
                if (checkNamespaces && !Router.Netns.Namespaces.Exists(netns))
                    r.Error(f["netns"], $"{at}.netns", netns.Contains('/')
                        ? $"network namespace {netns} does not exist"
                        : $"network namespace '{netns}' does not exist (no {Router.Netns.Namespaces.ResolvePath(netns)}; create it with `ip netns add {netns}`)");
                endpointIndex.Add(i);
                endpoints.Add(new EndpointOptions
                {
                    Network = network,
                    Netns = netns,
                    Interface = iface,
                    Address = addr.Network,
                    PrefixLength = addr.Length,
                    Mac = mac,
                });
            }
        }

        // static FDB entries
        var fdb = new List<StaticFdbEntry>();
        var fdbIndex = new List<int>();
        if (top.TryGetValue("fdb", out var fdbNode))
        {
            var items = r.Sequence(fdbNode, "fdb");
            for (int i = 0; i < items.Count; i++)
            {
                string at = $"fdb[{i}]";
                if (r.Mapping(items[i], at) is not { } fm) continue;
                var f = r.Fields(fm, at, "network", "mac", "vtep", "address");
                string? network = r.String(f, "network", at, true);
                string? macText = r.String(f, "mac", at, true);
                string? vtepText = r.String(f, "vtep", at, true);
                string? ipText = r.String(f, "address", at, false);
                MacAddress mac = default;
                VtepEndpoint vtep = default;
                uint ip = 0;
                bool ok = network is not null;
                if (macText is not null && !MacAddress.TryParse(macText, out mac)) { r.Error(f["mac"], $"{at}.mac", $"'{macText}' is not a MAC address"); ok = false; }
                if (vtepText is not null && !TryParseHostPort(vtepText, underlayPort, out vtep, out string err)) { r.Error(f["vtep"], $"{at}.vtep", err); ok = false; }
                if (ipText is not null && !Ipv4Prefix.TryParseAddress(ipText, out ip)) { r.Error(f["address"], $"{at}.address", $"'{ipText}' is not an IPv4 address"); ok = false; }
                if (!ok || macText is null || vtepText is null) continue;
                fdbIndex.Add(i);
                fdb.Add(new StaticFdbEntry { Network = network!, Mac = mac, Vtep = vtep, Address = ipText is null ? null : ip });
            }
        }

        if (r.Errors.Count > 0) throw new ConfigException(r.Errors);

        var options = new RouterOptions
        {
            Underlay = new VtepEndpoint(underlayAddress, (ushort)underlayPort),
            Peers = peers,
            Networks = networks,
            Endpoints = endpoints,
            StaticFdb = fdb,
            Learning = learning,
            FdbAging = aging,
            UnansweredAging = unanswered,
            BatchSize = batch,
            Queues = queues,
            UnderlayMtu = underlayMtu,
            TapOffload = offload,
            IoUring = ioUring,
            Encryption = encryption.ToOptions(),
        };
        var paths = new OptionPaths(endpointIndex, fdbIndex);
        foreach (var e in options.Validate())
            r.ErrorAt(paths.ToYaml(e.Path), paths.ToYamlMessage(e.Message));
        if (r.Errors.Count > 0) throw new ConfigException(r.Errors);
        return new HostConfig { File = Path.GetFullPath(file), Router = options, Metrics = metrics, Gossip = gossip, EspStateDirectory = encryption.StateDirectory, Dns = dns };
    }

    /// <summary>Parses "192.0.2.2" or "192.0.2.2:4790" (IPv4; the port defaults to <paramref name="defaultPort"/>).</summary>
    public static bool TryParseHostPort(string s, int defaultPort, out VtepEndpoint endpoint, out string error)
    {
        endpoint = default;
        error = "";
        string host = s.Trim();
        int port = defaultPort;
        int colon = host.LastIndexOf(':');
        if (colon >= 0)
        {
            if (!int.TryParse(host.AsSpan(colon + 1), out port) || port is < 1 or > 65535)
            {
                error = $"'{s}': the port must be a number from 1 to 65535";
                return false;
            }
            host = host[..colon];
        }
        if (!Ipv4Prefix.TryParseAddress(host, out uint a))
        {
            error = $"'{s}' is not an IPv4 address (optionally with :port)";
            return false;
        }
        endpoint = new VtepEndpoint(a, (ushort)port);
        return true;
    }
}
