using System.Net.Http;
using System.Text.Json;
using UserOverlay.Cli.Client;
using UserOverlay.Cli.Daemon;
using UserOverlay.Control.Networks;
using UserOverlay.Router;

namespace UserOverlay.Cli.Cni;

/// <summary>
/// The plugin's commands, each a few requests to the router's control socket (<see cref="ControlApi"/>):
/// <list type="bullet">
/// <item>ADD: <c>POST /v1/networks/NET/connect</c> with the namespace (CNI_NETNS), the interface (CNI_IFNAME) and the
/// endpoint name <see cref="EndpointName"/>; the address is UserOverlay's next free one, CNI_ARGS' <c>IP=</c>, or the
/// delegated IPAM plugin's (<see cref="DelegatedIpam"/>). Then <c>GET …/endpoints/NAME</c> for the result. A failure
/// after the connect disconnects again, and a delegated address is released: nothing is left half made. An ADD
/// repeated for the same container, namespace and interface returns the attachment it made.</item>
/// <item>DEL: <c>POST …/disconnect</c> by the endpoint's name; an endpoint (or network) already gone is success, and an
/// empty CNI_NETNS or a vanished namespace is fine (the daemon only closes the TAP).</item>
/// <item>CHECK: the endpoint exists with the namespace and interface given, the interface is in the namespace with its
/// MAC, and the prevResult names that interface, MAC and address.</item>
/// <item>GC (1.1.0): every endpoint of the network whose name starts with <c>cni-</c> and that is not in
/// <c>cni.dev/valid-attachments</c> is disconnected.</item>
/// <item>STATUS (1.1.0): the router answers and the network exists; otherwise code 50.</item>
/// </list>
/// A router that cannot be reached (not running, restarting) is code 11 (try again later), for STATUS code 50.
/// </summary>
internal sealed class CniCommands(Func<string, string?> environment, CniNetConf conf, byte[] rawConfig, string socketDirectory)
{
    /// <summary>Prefix of the names of the endpoints this plugin makes (GC removes only those).</summary>
    public const string EndpointPrefix = "cni-";

    /// <summary><c>cni-CONTAINERID</c> on eth0, <c>cni-CONTAINERID-IFNAME</c> on any other interface.</summary>
    public static string EndpointName(string containerId, string ifname) =>
        ifname == NetworkManager.DefaultInterface ? EndpointPrefix + containerId : $"{EndpointPrefix}{containerId}-{ifname}";

    private string Version => conf.CniVersion!;

    /// <summary>ADD: attaches the container and returns the result in the configuration's version.</summary>
    public CniResult Add()
    {
        RequireVersion("ADD");
        string id = ContainerId(), netns = Require("CNI_NETNS"), ifname = IfName();
        Require("CNI_PATH");
        string network = NetworkName(), name = EndpointName(id, ifname);
        string? address = CniArgs().GetValueOrDefault("IP");
        if (address is not null && address.Contains('/')) address = address[..address.IndexOf('/')];
        var ipam = DelegatedIpam.From(conf, environment, rawConfig);
        if (ipam is not null && address is not null)
            throw new CniException(CniException.InvalidConfig, "ipam: an address is given in CNI_ARGS (IP=) and a delegated IPAM plugin is configured too; use one");
        using var client = Connect();
        CniResult? ipamResult = null;
        if (ipam is not null)
        {
            ipamResult = ipam.Run("ADD") ?? throw new CniException(CniException.IoFailure, $"ipam.type {ipam.Type}: ADD printed no result");
            address = FirstIpv4(ipamResult) ?? throw Undo(ipam, new CniException(CniException.InvalidConfig, $"ipam.type {ipam.Type}: its result has no IPv4 address (UserOverlay networks are IPv4)"));
        }
        try
        {
            bool made = false;
            try
            {
                Call(client, HttpMethod.Post, $"v1/networks/{Uri.EscapeDataString(network)}/connect",
                    JsonSerializer.Serialize(new ConnectRequest(netns, name, ifname, address), ControlJson.Default.ConnectRequest));
                made = true;
            }
            catch (DaemonErrorException e) when (e.ApiCode == ControlErrorCodes.Conflict && Existing(client, network, name) is { } there
                && there.Netns == netns && there.Interface == ifname && (address is null || there.Ipv4Address.StartsWith(address + "/", StringComparison.Ordinal)))
            {
                // The same ADD again (a runtime's retry): the attachment is already as asked.
            }
            catch (Exception e) when (e is RouterException or HttpRequestException)
            {
                throw Translate(e, $"connecting {netns} to network '{network}'");
            }
            try
            {
                var detail = Detail(client, network, name);
                return Result(detail, netns, ipamResult);
            }
            catch when (made)
            {
                try { Call(client, HttpMethod.Post, $"v1/networks/{Uri.EscapeDataString(network)}/disconnect", Disconnect(name)); }
                catch (Exception e) when (e is RouterException or HttpRequestException) { }
                throw;
            }
        }
        catch (CniException e) when (ipam is not null)
        {
            throw Undo(ipam, e);
        }
    }

    /// <summary>DEL: detaches the container; idempotent.</summary>
    public void Delete()
    {
        RequireVersion("DEL");
        string id = ContainerId(), ifname = IfName();
        Require("CNI_PATH");
        string network = NetworkName();
        var ipam = DelegatedIpam.From(conf, environment, rawConfig);
        using (var client = Connect())
        {
            try
            {
                Call(client, HttpMethod.Post, $"v1/networks/{Uri.EscapeDataString(network)}/disconnect", Disconnect(EndpointName(id, ifname)));
            }
            catch (DaemonErrorException e) when (e.ApiCode == ControlErrorCodes.NotFound) { } // gone already, or its network is
            catch (Exception e) when (e is RouterException or HttpRequestException)
            {
                throw Translate(e, $"disconnecting container {id} from network '{network}'");
            }
        }
        ipam?.Run("DEL");
    }

    /// <summary>CHECK: the attachment is as ADD left it, or code 101 saying what differs.</summary>
    public void Check()
    {
        RequireVersion("CHECK");
        string id = ContainerId(), netns = Require("CNI_NETNS"), ifname = IfName();
        Require("CNI_PATH");
        string network = NetworkName(), name = EndpointName(id, ifname);
        var prev = conf.PrevResult ?? throw new CniException(CniException.InvalidConfig, "prevResult: CHECK needs the result of the container's ADD");
        var ipam = DelegatedIpam.From(conf, environment, rawConfig);
        EndpointDetail d;
        using (var client = Connect())
        {
            d = Existing(client, network, name)
                ?? throw Failed($"container {id} has no endpoint '{name}' on network '{network}' (it was never added, or was deleted)");
        }
        if (d.Netns != netns) throw Failed($"endpoint '{name}' is in namespace {d.Netns}, not in CNI_NETNS {netns}");
        if (d.Interface != ifname) throw Failed($"endpoint '{name}' is interface {d.Interface}, not CNI_IFNAME {ifname}");
        if (!d.NetnsPresent) throw Failed($"the namespace {netns} is gone");
        if (d.InterfaceMac is null) throw Failed($"the namespace {netns} has no interface {ifname} any more");
        if (d.InterfaceMac != d.MacAddress) throw Failed($"interface {ifname} in {netns} has MAC {d.InterfaceMac}, not the endpoint's {d.MacAddress}");
        var mine = prev.Interfaces?.Select((i, n) => (i, n)).FirstOrDefault(x => x.i.Name == ifname && x.i.Sandbox == netns);
        if (mine?.i is not { } iface) throw Failed($"prevResult: lists no interface {ifname} in sandbox {netns}");
        if (iface.Mac is { } mac && !mac.Equals(d.MacAddress, StringComparison.OrdinalIgnoreCase))
            throw Failed($"prevResult: interface {ifname} has MAC {mac}, but the endpoint's is {d.MacAddress}");
        if (prev.Ips?.Any(ip => ip.Address == d.Ipv4Address) != true)
            throw Failed($"prevResult: lists no address {d.Ipv4Address} (the endpoint's)");
        ipam?.Run("CHECK");
    }

    /// <summary>GC: disconnects this plugin's endpoints on the network that are not in the valid-attachments list.</summary>
    public void CollectGarbage()
    {
        RequireVersion("GC", minimum: "1.1.0");
        Require("CNI_PATH");
        string network = NetworkName();
        var valid = conf.ValidAttachments ?? conf.Attachments
            ?? throw new CniException(CniException.InvalidConfig, "cni.dev/valid-attachments: GC needs the list of valid attachments");
        var keep = new HashSet<string>(StringComparer.Ordinal);
        foreach (var a in valid)
        {
            if (string.IsNullOrEmpty(a?.ContainerID)) throw new CniException(CniException.InvalidConfig, "cni.dev/valid-attachments: an entry has no containerID");
            keep.Add(EndpointName(a.ContainerID, string.IsNullOrEmpty(a.Ifname) ? NetworkManager.DefaultInterface : a.Ifname));
        }
        using var client = Connect();
        IReadOnlyList<EndpointView> endpoints;
        try
        {
            endpoints = ControlJson.Read(Call(client, HttpMethod.Get, $"v1/networks/{Uri.EscapeDataString(network)}/endpoints", null), ControlJson.Default.IReadOnlyListEndpointView);
        }
        catch (DaemonErrorException e) when (e.ApiCode == ControlErrorCodes.NotFound) { return; } // no network, nothing attached to it
        catch (Exception e) when (e is RouterException or HttpRequestException or JsonException or InvalidDataException)
        {
            throw Translate(e, $"listing the endpoints of network '{network}'");
        }
        var failures = new List<string>();
        foreach (var ep in endpoints.Where(e => e.Name.StartsWith(EndpointPrefix, StringComparison.Ordinal) && !keep.Contains(e.Name)))
        {
            try { Call(client, HttpMethod.Post, $"v1/networks/{Uri.EscapeDataString(network)}/disconnect", Disconnect(ep.Id)); }
            catch (DaemonErrorException e) when (e.ApiCode == ControlErrorCodes.NotFound) { }
            catch (Exception e) when (e is RouterException or HttpRequestException) { failures.Add($"{ep.Name}: {e.Message}"); }
        }
        if (failures.Count > 0)
            throw new CniException(CniException.RouterRefused, $"GC could not remove {failures.Count} stale endpoint(s) of network '{network}'", string.Join("; ", failures));
    }

    /// <summary>STATUS: code 50 unless the router answers and has the network.</summary>
    public void Status()
    {
        RequireVersion("STATUS", minimum: "1.1.0");
        string network = NetworkName();
        try
        {
            using var client = new ControlClient(RouterHost.Resolve(conf.Host, environment(RouterHost.EnvironmentVariable), socketDirectory));
            Call(client, HttpMethod.Get, $"v1/networks/{Uri.EscapeDataString(network)}", null);
        }
        catch (UsageException e) { throw new CniException(CniException.InvalidConfig, $"host: {e.Message}"); }
        catch (Exception e) when (e is RouterException or HttpRequestException)
        {
            throw new CniException(CniException.NotAvailable, $"the plugin cannot attach containers to network '{network}' now: {e.Message}");
        }
    }

    private CniResult Result(EndpointDetail d, string netns, CniResult? ipam)
    {
        bool v0 = Version.StartsWith("0.", StringComparison.Ordinal), mtu = string.CompareOrdinal(Version, "1.1.0") >= 0;
        var prev = conf.PrevResult;
        var interfaces = new List<CniInterface>(prev?.Interfaces ?? []) { new(d.Interface, d.MacAddress, mtu ? d.Mtu : null, netns) };
        string? gateway = ipam?.Ips?.FirstOrDefault(i => i.Address == d.Ipv4Address)?.Gateway ?? d.Gateway;
        var ips = new List<CniIpConfig>((prev?.Ips ?? []).Select(i => i with { Version = v0 ? i.Version ?? (i.Address.Contains(':') ? "6" : "4") : null }))
        {
            new(d.Ipv4Address, gateway, interfaces.Count - 1, v0 ? "4" : null),
        };
        // The one route the TAP has: its subnet, on the link (the router neither routes nor NATs beyond it).
        var routes = new List<CniRoute>(prev?.Routes ?? []) { new(d.Subnet) };
        var dns = Given(ipam?.Dns) ?? Given(prev?.Dns) ?? (gateway is null ? null : new CniDns([gateway]));
        return new CniResult { CniVersion = Version, Interfaces = interfaces, Ips = ips, Routes = routes, Dns = dns };
    }

    // A DNS block that says something (host-local answers "dns": {}).
    private static CniDns? Given(CniDns? d) => d is { Nameservers.Count: > 0 } or { Domain: not null } or { Search.Count: > 0 } ? d : null;

    private static string? FirstIpv4(CniResult r) =>
        r.Ips?.Select(i => i.Address).FirstOrDefault(a => !a.Contains(':')) is { } a ? (a.Contains('/') ? a[..a.IndexOf('/')] : a) : null;

    // Releases the delegated address after a failed ADD; returns the failure to throw.
    private static CniException Undo(DelegatedIpam ipam, CniException failure)
    {
        try { ipam.Run("DEL"); }
        catch (CniException e) { return new CniException(failure.Code, failure.Message, $"{failure.Details}; releasing the address with ipam.type {ipam.Type} failed too: {e.Message}".TrimStart(';', ' ')); }
        return failure;
    }

    private static string Disconnect(string endpoint) => JsonSerializer.Serialize(new DisconnectRequest(Name: endpoint), ControlJson.Default.DisconnectRequest);

    private static EndpointDetail? Existing(ControlClient client, string network, string name)
    {
        try { return ReadDetail(client, network, name); }
        catch (DaemonErrorException e) when (e.ApiCode == ControlErrorCodes.NotFound && e.Message.StartsWith("endpoint:", StringComparison.Ordinal)) { return null; }
        catch (Exception e) when (e is RouterException or HttpRequestException or JsonException or InvalidDataException)
        {
            throw Translate(e, $"reading endpoint '{name}' of network '{network}'");
        }
    }

    private static EndpointDetail Detail(ControlClient client, string network, string name)
    {
        try { return ReadDetail(client, network, name); }
        catch (Exception e) when (e is RouterException or HttpRequestException or JsonException or InvalidDataException)
        {
            throw Translate(e, $"reading endpoint '{name}' of network '{network}'");
        }
    }

    private static EndpointDetail ReadDetail(ControlClient client, string network, string name) =>
        ControlJson.Read(Call(client, HttpMethod.Get, $"v1/networks/{Uri.EscapeDataString(network)}/endpoints/{Uri.EscapeDataString(name)}", null),
            ControlJson.Default.EndpointDetail);

    private static string Call(ControlClient client, HttpMethod method, string path, string? json) =>
        client.SendAsync(method, path, json).GetAwaiter().GetResult();

    /// <summary>A client of the router the configuration's "host" names (or the CLI's default); code 11 when none runs.</summary>
    private ControlClient Connect()
    {
        try { return new ControlClient(RouterHost.Resolve(conf.Host, environment(RouterHost.EnvironmentVariable), socketDirectory)); }
        catch (UsageException e) { throw new CniException(CniException.InvalidConfig, $"host: {e.Message}"); }
        catch (RouterException e) { throw new CniException(CniException.TryAgainLater, $"the UserOverlay router is not running: {e.Message}"); }
    }

    /// <summary>
    /// A failed request as a CNI error: 11 when the router cannot be reached or is not ready, 7 for a bad network or
    /// address, 3 for a namespace that does not exist, else 100.
    /// </summary>
    private static CniException Translate(Exception e, string doing) => e switch
    {
        DaemonErrorException d => new CniException(d.ApiCode switch
        {
            ControlErrorCodes.Unavailable => CniException.TryAgainLater,
            ControlErrorCodes.InvalidArgument or ControlErrorCodes.Ambiguous => CniException.InvalidConfig,
            ControlErrorCodes.NotFound when d.Message.StartsWith("network:", StringComparison.Ordinal) => CniException.InvalidConfig,
            ControlErrorCodes.NotFound when d.Message.StartsWith("netns:", StringComparison.Ordinal) => CniException.UnknownContainer,
            _ => CniException.RouterRefused,
        }, d.Message, $"{doing}: the router answered {(int)d.Status} {d.ApiCode}"),
        JsonException or InvalidDataException => new CniException(CniException.IoFailure, $"{doing}: the router's answer is not the expected JSON: {e.Message}"),
        _ => new CniException(CniException.TryAgainLater, $"{doing}: {e.Message}"),
    };

    private static CniException Failed(string message) => new(CniException.CheckFailed, message);

    private void RequireVersion(string command, string? minimum = null)
    {
        if (conf.CniVersion is not { } v || !CniPlugin.SupportedVersions.Contains(v))
            throw new CniException(CniException.IncompatibleVersion,
                $"cniVersion: '{CniPlugin.Printable(conf.CniVersion ?? "(none)")}' is not supported (this plugin speaks {string.Join(", ", CniPlugin.SupportedVersions)})");
        if (minimum is not null && string.CompareOrdinal(v, minimum) < 0)
            throw new CniException(CniException.IncompatibleVersion, $"cniVersion: {command} is defined from CNI {minimum}; the configuration says {v}");
        if (conf.Type is { } t && t != CniPlugin.ProgramName)
            throw new CniException(CniException.InvalidConfig, $"type: is '{CniPlugin.Printable(t)}', not {CniPlugin.ProgramName}");
    }

    private string NetworkName() => conf.Network is { Length: > 0 } n ? n
        : throw new CniException(CniException.InvalidConfig, "network: is required: the name (or id) of the UserOverlay network to attach to, e.g. \"network\": \"blue\"");

    private string Require(string variable) => environment(variable) is { Length: > 0 } v ? v
        : throw new CniException(CniException.InvalidEnvironment, $"{variable} is not set (the runtime must set it for CNI_COMMAND={environment("CNI_COMMAND")})");

    private string ContainerId()
    {
        string id = Require("CNI_CONTAINERID");
        if (!char.IsAsciiLetterOrDigit(id[0]) || !id.All(c => char.IsAsciiLetterOrDigit(c) || c is '_' or '.' or '-'))
            throw new CniException(CniException.InvalidEnvironment, $"CNI_CONTAINERID '{CniPlugin.Printable(id)}' is not a container id (letters, digits, '_', '.', '-', starting with a letter or digit)");
        return id;
    }

    private string IfName()
    {
        string name = Require("CNI_IFNAME");
        if (name.Length > 15 || name is "." or ".." || name.Any(c => c is '/' or ':' || char.IsWhiteSpace(c) || char.IsControl(c)))
            throw new CniException(CniException.InvalidEnvironment, $"CNI_IFNAME '{CniPlugin.Printable(name)}' is not an interface name (1 to 15 characters, no '/', ':' or spaces)");
        return name;
    }

    // CNI_ARGS: "K=V;K2=V2" (unknown keys are ignored, as IgnoreUnknown asks of plugins that know some).
    private Dictionary<string, string> CniArgs()
    {
        var result = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (string pair in (environment("CNI_ARGS") ?? "").Split(';', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        {
            int eq = pair.IndexOf('=');
            if (eq <= 0) throw new CniException(CniException.InvalidEnvironment, $"CNI_ARGS: '{CniPlugin.Printable(pair)}' is not KEY=VALUE");
            result[pair[..eq]] = pair[(eq + 1)..];
        }
        return result;
    }
}
