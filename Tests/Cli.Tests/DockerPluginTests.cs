using System.Net.Sockets;
using System.Text;
using System.Text.Json;
using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.Logging.Abstractions;
using UserOverlay.Cli.Docker;
using UserOverlay.Control.Networks;
using UserOverlay.Control.State;
using UserOverlay.Testing.Common;

namespace UserOverlay.Cli.Tests;

/// <summary>
/// Docker's plugin protocol against the real server on a real Unix socket (<see cref="DockerPluginServer.ServeAsync"/>),
/// over a real <see cref="NetworkManager"/> and file store, without a data plane: the calls Docker makes, in Docker's
/// order, and what they leave in the manager and the plugin's state; hostile requests; repeats; a restart.
/// </summary>
public sealed class DockerPluginTests : IAsyncLifetime
{
    private const string NetId = "1111111111111111111111111111111111111111111111111111111111111111";
    private const string EpId = "2222222222222222222222222222222222222222222222222222222222222222";
    private readonly string _dir = Directory.CreateTempSubdirectory("uo-dockerplugin-").FullName;
    private NetworkManager _manager = null!;
    private WebApplication? _app;
    private HttpClient _http = null!;

    private string Socket => Path.Combine(_dir, "plugins", "useroverlay.sock");
    private string StateFile => Path.Combine(_dir, "docker", "plugin.json");

    public async ValueTask InitializeAsync()
    {
        Requires.Root(); // the socket is root's (0660 root:root) and answers uid 0 only, as dockerd runs
        await StartAsync();
        _http = new HttpClient(new SocketsHttpHandler
        {
            ConnectCallback = async (_, ct) =>
            {
                var s = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
                await s.ConnectAsync(new UnixDomainSocketEndPoint(Socket), ct);
                return new NetworkStream(s, ownsSocket: true);
            },
        })
        { BaseAddress = new Uri("http://plugin/") };
    }

    private async Task StartAsync()
    {
        _manager = new NetworkManager(new FileNetworkStore(Path.Combine(_dir, "networks")), NoDataPlane.Instance);
        var plugin = new DockerNetworkPlugin(() => _manager, () => null, null, _dir, NullLogger.Instance);
        plugin.Restore();
        _app = await DockerPluginServer.ServeAsync(Socket, plugin, NullLoggerFactory.Instance, CancellationToken.None);
    }

    private async Task StopAsync()
    {
        if (_app is null) return;
        await _app.StopAsync();
        await _app.DisposeAsync();
        _app = null;
    }

    public async ValueTask DisposeAsync()
    {
        _http?.Dispose();
        await StopAsync();
        Directory.Delete(_dir, recursive: true);
    }

    private async Task<(int Status, JsonElement Json, string Body)> Call(string method, string body)
    {
        using var content = new StringContent(body, Encoding.UTF8, "application/vnd.docker.plugins.v1.2+json");
        using var resp = await _http.PostAsync(method, content);
        string text = await resp.Content.ReadAsStringAsync();
        return ((int)resp.StatusCode, JsonDocument.Parse(text).RootElement.Clone(), text);
    }

    private async Task<JsonElement> Ok(string method, string body)
    {
        var (status, json, text) = await Call(method, body);
        Assert.True(status == 200, $"{method} {body}: {status} {text}");
        Assert.False(json.TryGetProperty("Err", out _), text);
        return json;
    }

    // An error in the API's shape, and nothing changed: neither the plugin's state file nor the manager's networks and endpoints.
    private async Task<string> Refused(string method, string body, int status)
    {
        string before = Snapshot();
        var (s, json, text) = await Call(method, body);
        Assert.True(s == status, $"{method} {body}: expected {status}, got {s} {text}");
        Assert.True(json.TryGetProperty("Err", out var err) && err.GetString() is { Length: > 0 }, text);
        Assert.Equal(before, Snapshot());
        return err.GetString()!;
    }

    private string Snapshot()
    {
        string state = File.Exists(StateFile) ? File.ReadAllText(StateFile) : "";
        var s = _manager.Snapshot();
        return state + "|" + string.Join(",", s.Networks.Select(n => n.Id + n.Name)) + "|" + string.Join(",", s.Endpoints.Select(e => e.Id + e.Address + e.Interface));
    }

    private static string CreateNetworkBody(string id, string subnet, string gateway, string generic) =>
        $$$"""{"NetworkID":"{{{id}}}","Options":{"com.docker.network.enable_ipv6":false,"com.docker.network.generic":{{{{generic}}}}},"IPv4Data":[{"AddressSpace":"useroverlay","Pool":"{{{subnet}}}","Gateway":"{{{gateway}}}"}],"IPv6Data":[]}""";

    // Docker's calls for `docker network create -d useroverlay --ipam-driver useroverlay --subnet 198.18.20.0/24 -o name=blue ...`.
    private async Task<string> CreateBlue()
    {
        var pool = await Ok("/IpamDriver.RequestPool", """{"AddressSpace":"useroverlay","Pool":"198.18.20.0/24","SubPool":"","Options":{},"V6":false}""");
        string poolId = pool.GetProperty("PoolID").GetString()!;
        Assert.Equal("198.18.20.0/24", pool.GetProperty("Pool").GetString());
        var gw = await Ok("/IpamDriver.RequestAddress", $$$"""{"PoolID":"{{{poolId}}}","Address":"","Options":{"RequestAddressType":"com.docker.network.gateway"}}""");
        Assert.Equal("198.18.20.1/24", gw.GetProperty("Address").GetString());
        await Ok("/NetworkDriver.CreateNetwork", CreateNetworkBody(NetId, "198.18.20.0/24", "198.18.20.1/24",
            "\"name\":\"blue\",\"com.docker.network.driver.overlay.vxlanid_list\":\"4200\""));
        return poolId;
    }

    [Fact]
    public async Task Activate_and_capabilities_are_a_network_and_IPAM_driver_of_local_scope_and_global_connectivity()
    {
        var a = await Ok("/Plugin.Activate", "");
        Assert.Equal(["NetworkDriver", "IpamDriver"], a.GetProperty("Implements").EnumerateArray().Select(e => e.GetString()));
        var c = await Ok("/NetworkDriver.GetCapabilities", "");
        Assert.Equal("local", c.GetProperty("Scope").GetString());
        Assert.Equal("global", c.GetProperty("ConnectivityScope").GetString());
        var spaces = await Ok("/IpamDriver.GetDefaultAddressSpaces", "");
        Assert.Equal("useroverlay", spaces.GetProperty("LocalDefaultAddressSpace").GetString());
        Assert.False((await Ok("/IpamDriver.GetCapabilities", "")).GetProperty("RequiresMACAddress").GetBoolean());
        foreach (string m in (string[])["DiscoverNew", "DiscoverDelete", "ProgramExternalConnectivity", "RevokeExternalConnectivity"])
            await Ok("/NetworkDriver." + m, $$$"""{"NetworkID":"{{{NetId}}}","EndpointID":"{{{EpId}}}"}""");
    }

    [Fact]
    public async Task Docker_calls_make_the_network_and_a_handed_off_endpoint_and_remove_them_in_turn()
    {
        string poolId = await CreateBlue();
        var net = _manager.GetNetwork("blue");
        Assert.Equal((uint)4200, net.Vni);
        Assert.Equal("198.18.20.0/24", net.Subnet.ToString());

        // Two address requests never get one address; the endpoint takes the first.
        string a1 = (await Ok("/IpamDriver.RequestAddress", $$$"""{"PoolID":"{{{poolId}}}","Address":"","Options":{}}""")).GetProperty("Address").GetString()!;
        string a2 = (await Ok("/IpamDriver.RequestAddress", $$$"""{"PoolID":"{{{poolId}}}","Address":"","Options":{}}""")).GetProperty("Address").GetString()!;
        Assert.Equal("198.18.20.2/24", a1);
        Assert.NotEqual(a1, a2);

        var created = await Ok("/NetworkDriver.CreateEndpoint", $$$"""{"NetworkID":"{{{NetId}}}","EndpointID":"{{{EpId}}}","Interface":{"Address":"{{{a1}}}","AddressIPv6":"","MacAddress":""},"Options":{}}""");
        Assert.Equal("02:00:c6:12:14:02", created.GetProperty("Interface").GetProperty("MacAddress").GetString());
        var ep = Assert.Single(_manager.GetEndpoints("blue"));
        Assert.True(ep.HandOff);
        Assert.Equal("uo222222222222", ep.Interface);
        Assert.Equal("198.18.20.2", UserOverlay.Router.VtepEndpoint.FormatAddress(ep.Address));

        var join = await Ok("/NetworkDriver.Join", $$$"""{"NetworkID":"{{{NetId}}}","EndpointID":"{{{EpId}}}","SandboxKey":"/var/run/docker/netns/abc","Options":{}}""");
        Assert.Equal("uo222222222222", join.GetProperty("InterfaceName").GetProperty("SrcName").GetString());
        Assert.Equal("eth", join.GetProperty("InterfaceName").GetProperty("DstPrefix").GetString());
        Assert.True(join.GetProperty("DisableGatewayService").GetBoolean()); // no docker_gwbridge
        var info = await Ok("/NetworkDriver.EndpointOperInfo", $$$"""{"NetworkID":"{{{NetId}}}","EndpointID":"{{{EpId}}}"}""");
        Assert.Equal("blue", info.GetProperty("Value").GetProperty("useroverlay.network").GetString());

        // A second Join is refused and changes nothing.
        string err = await Refused("/NetworkDriver.Join", $$$"""{"NetworkID":"{{{NetId}}}","EndpointID":"{{{EpId}}}","SandboxKey":"/var/run/docker/netns/other","Options":{}}""", 409);
        Assert.Contains("joined", err);

        await Ok("/NetworkDriver.Leave", $$$"""{"NetworkID":"{{{NetId}}}","EndpointID":"{{{EpId}}}"}""");
        await Ok("/NetworkDriver.Leave", $$$"""{"NetworkID":"{{{NetId}}}","EndpointID":"{{{EpId}}}"}"""); // leaving twice is harmless
        await Refused("/NetworkDriver.DeleteNetwork", $$$"""{"NetworkID":"{{{NetId}}}"}""", 409); // an endpoint is on it
        await Ok("/NetworkDriver.DeleteEndpoint", $$$"""{"NetworkID":"{{{NetId}}}","EndpointID":"{{{EpId}}}"}""");
        Assert.Empty(_manager.GetEndpoints("blue"));
        await Ok("/IpamDriver.ReleaseAddress", $$$"""{"PoolID":"{{{poolId}}}","Address":"{{{a1.Split('/')[0]}}}"}""");
        await Ok("/IpamDriver.ReleaseAddress", $$$"""{"PoolID":"{{{poolId}}}","Address":"{{{a2.Split('/')[0]}}}"}""");
        await Ok("/IpamDriver.ReleaseAddress", $$$"""{"PoolID":"{{{poolId}}}","Address":"198.18.20.1"}""");
        await Ok("/NetworkDriver.DeleteNetwork", $$$"""{"NetworkID":"{{{NetId}}}"}""");
        await Ok("/IpamDriver.ReleasePool", $$$"""{"PoolID":"{{{poolId}}}"}""");
        Assert.Empty(_manager.ListNetworks()); // the plugin made it, so it removed it

        using var state = JsonDocument.Parse(File.ReadAllText(StateFile));
        foreach (string part in (string[])["Pools", "Networks", "Endpoints"])
            Assert.Empty(state.RootElement.GetProperty(part).EnumerateObject());
    }

    [Fact]
    public async Task A_subnet_of_an_existing_network_binds_to_it_and_deleting_the_Docker_network_keeps_it()
    {
        var green = _manager.CreateNetwork(new NetworkCreateRequest { Name = "green", Subnet = "198.18.21.0/24", Vni = 4300 });
        // By name (the IPAM option), no --subnet needed.
        var pool = await Ok("/IpamDriver.RequestPool", """{"AddressSpace":"useroverlay","Pool":"","Options":{"network":"green"},"V6":false}""");
        Assert.Equal("198.18.21.0/24", pool.GetProperty("Pool").GetString());
        await Ok("/NetworkDriver.CreateNetwork", CreateNetworkBody(NetId, "198.18.21.0/24", "198.18.21.1/24", ""));
        await Ok("/NetworkDriver.CreateNetwork", CreateNetworkBody(NetId, "198.18.21.0/24", "198.18.21.1/24", "")); // a repeat is harmless
        Assert.Single(_manager.ListNetworks());
        await Ok("/NetworkDriver.CreateEndpoint", $$$"""{"NetworkID":"{{{NetId}}}","EndpointID":"{{{EpId}}}","Interface":{"Address":"198.18.21.9/24"}}""");
        await Ok("/NetworkDriver.CreateEndpoint", $$$"""{"NetworkID":"{{{NetId}}}","EndpointID":"{{{EpId}}}","Interface":{"Address":"198.18.21.9/24"}}""");
        Assert.Equal(green.Id, Assert.Single(_manager.GetEndpoints("green")).NetworkId);
        await Ok("/NetworkDriver.DeleteEndpoint", $$$"""{"NetworkID":"{{{NetId}}}","EndpointID":"{{{EpId}}}"}""");
        await Ok("/NetworkDriver.DeleteNetwork", $$$"""{"NetworkID":"{{{NetId}}}"}""");
        Assert.Equal(green.Id, Assert.Single(_manager.ListNetworks()).Id);
        await Ok("/NetworkDriver.DeleteNetwork", $$$"""{"NetworkID":"{{{NetId}}}"}"""); // unknown now: deleted already
    }

    [Fact]
    public async Task On_a_cluster_network_addresses_come_from_the_cluster_under_the_id_the_endpoint_attaches_with()
    {
        var def = _manager.AdoptNetwork(new NetworkDefinition
        {
            Id = ObjectIds.New(),
            Name = "swarmnet",
            Created = DateTimeOffset.UnixEpoch,
            Scope = NetworkManager.SwarmScope,
            Subnet = UserOverlay.Router.Ipv4Prefix.TryParse("198.18.24.0/24", out var p, out _) ? p : default,
            Gateway = 0xC612_1801u,
            Vni = 4500,
            Attachable = true,
        });
        var authority = new Authority { Next = 0xC612_1863u }; // the cluster hands out .99 first
        _manager.AddressAuthority = authority;
        string poolId = (await Ok("/IpamDriver.RequestPool", """{"AddressSpace":"useroverlay","Options":{"network":"swarmnet"}}""")).GetProperty("PoolID").GetString()!;
        await Ok("/NetworkDriver.CreateNetwork", CreateNetworkBody(NetId, "198.18.24.0/24", "198.18.24.1/24", ""));
        string a = (await Ok("/IpamDriver.RequestAddress", $$$"""{"PoolID":"{{{poolId}}}","Address":"","Options":{}}""")).GetProperty("Address").GetString()!;
        Assert.Equal("198.18.24.99/24", a);
        string promised = Assert.Single(authority.Reserved);
        await Ok("/NetworkDriver.CreateEndpoint", $$$"""{"NetworkID":"{{{NetId}}}","EndpointID":"{{{EpId}}}","Interface":{"Address":"{{{a}}}"}}""");
        Assert.Equal(promised, Assert.Single(_manager.GetEndpoints(def.Id)).Id); // the reservation's id is the endpoint's
        // A promise Docker gives back unused goes back to the cluster.
        string b = (await Ok("/IpamDriver.RequestAddress", $$$"""{"PoolID":"{{{poolId}}}","Address":"","Options":{}}""")).GetProperty("Address").GetString()!;
        await Ok("/IpamDriver.ReleaseAddress", $$$"""{"PoolID":"{{{poolId}}}","Address":"{{{b.Split('/')[0]}}}"}""");
        Assert.Equal(authority.Reserved[^1], Assert.Single(authority.Released));
        await Ok("/NetworkDriver.DeleteEndpoint", $$$"""{"NetworkID":"{{{NetId}}}","EndpointID":"{{{EpId}}}"}""");
        Assert.Contains(promised, authority.Released);
        await Ok("/NetworkDriver.DeleteNetwork", $$$"""{"NetworkID":"{{{NetId}}}"}""");
        Assert.Single(_manager.ListNetworks()); // the cluster's network stays
    }

    private sealed class Authority : IAddressAuthority
    {
        public uint Next;
        public List<string> Reserved { get; } = [];
        public List<string> Released { get; } = [];

        public AddressReservation Reserve(NetworkDefinition network, string endpointId, string name, uint? address, UserOverlay.Router.MacAddress? mac)
        {
            Reserved.Add(endpointId);
            uint a = address ?? Next++;
            return new AddressReservation(a, mac ?? EndpointMac.FromAddress(a));
        }

        public void Release(NetworkDefinition network, string endpointId) => Released.Add(endpointId);
    }

    [Fact]
    public async Task Hostile_and_malformed_requests_get_an_Err_and_change_nothing()
    {
        string poolId = await CreateBlue();
        await Ok("/NetworkDriver.CreateEndpoint", $$$"""{"NetworkID":"{{{NetId}}}","EndpointID":"{{{EpId}}}","Interface":{"Address":"198.18.20.5/24"}}""");
        string other = new('3', 64);
        await Refused("/NetworkDriver.CreateEndpoint", "{", 400);
        await Refused("/NetworkDriver.Join", """{"NetworkID": 5}""", 400);
        await Refused("/NetworkDriver.Join", "null", 400);
        await Refused("/IpamDriver.RequestPool", "[1,2]", 400);
        await Refused("/NetworkDriver.DiscoverNew", "not json", 400);
        await Refused("/NetworkDriver.Join", $$$"""{"NetworkID":"{{{NetId}}}","EndpointID":"{{{other}}}","SandboxKey":"/x"}""", 404); // unknown endpoint
        await Refused("/NetworkDriver.Leave", $$$"""{"NetworkID":"{{{NetId}}}","EndpointID":"{{{other}}}"}""", 404);
        await Refused("/NetworkDriver.DeleteEndpoint", $$$"""{"NetworkID":"{{{other}}}","EndpointID":"{{{EpId}}}"}""", 404); // wrong network
        await Refused("/NetworkDriver.EndpointOperInfo", $$$"""{"NetworkID":"{{{NetId}}}","EndpointID":"../../etc"}""", 400);
        await Refused("/NetworkDriver.CreateEndpoint", $$$"""{"NetworkID":"{{{other}}}","EndpointID":"{{{other}}}","Interface":{"Address":"198.18.20.6/24"}}""", 404);
        await Refused("/NetworkDriver.CreateEndpoint", $$$"""{"NetworkID":"{{{NetId}}}","EndpointID":"{{{other}}}","Interface":{"Address":"198.18.20.5/24"}}""", 409); // address taken
        await Refused("/NetworkDriver.CreateEndpoint", $$$"""{"NetworkID":"{{{NetId}}}","EndpointID":"{{{other}}}","Interface":{"Address":"203.0.113.1/24"}}""", 400);
        await Refused("/NetworkDriver.CreateEndpoint", $$$"""{"NetworkID":"{{{NetId}}}","EndpointID":"{{{other}}}","Interface":{"Address":"198.18.20.7/16"}}""", 400);
        await Refused("/NetworkDriver.CreateEndpoint", $$$"""{"NetworkID":"{{{NetId}}}","EndpointID":"{{{other}}}"}""", 400); // no address (not our IPAM)
        await Refused("/NetworkDriver.CreateEndpoint", $$$"""{"NetworkID":"{{{NetId}}}","EndpointID":"{{{EpId}}}","Interface":{"Address":"198.18.20.8/24"}}""", 409); // same id, other address
        await Refused("/NetworkDriver.CreateNetwork", CreateNetworkBody(other, "198.18.22.0/24", "198.18.22.1/24", "").Replace("\"useroverlay\",\"Pool", "\"LocalDefault\",\"Pool"), 400); // Docker's IPAM
        await Refused("/NetworkDriver.CreateNetwork", CreateNetworkBody(other, "198.18.22.0/24", "198.18.22.1/24", "\"bogus\":\"1\""), 400);
        await Refused("/NetworkDriver.CreateNetwork", CreateNetworkBody(other, "198.18.20.0/25", "198.18.20.1/25", ""), 409); // overlaps blue
        await Refused("/IpamDriver.RequestPool", """{"AddressSpace":"useroverlay","Pool":"198.18.20.0/24"}""", 409); // held by blue already
        await Refused("/IpamDriver.RequestPool", """{"AddressSpace":"useroverlay","Pool":"198.18.20.128/25"}""", 409);
        await Refused("/IpamDriver.RequestPool", """{"AddressSpace":"useroverlay","Pool":""}""", 400);
        await Refused("/IpamDriver.RequestPool", """{"AddressSpace":"useroverlay","Pool":"198.18.30.0/24","V6":true}""", 400);
        await Refused("/IpamDriver.RequestPool", """{"AddressSpace":"useroverlay","Pool":"198.18.30.0/24","Options":{"x":"y"}}""", 400);
        await Refused("/IpamDriver.RequestAddress", """{"PoolID":"useroverlay/198.18.99.0/24"}""", 404);
        await Refused("/IpamDriver.RequestAddress", $$$"""{"PoolID":"{{{poolId}}}","Address":"198.18.20.5"}""", 409); // an endpoint has it
        await Refused("/IpamDriver.ReleaseAddress", $$$"""{"PoolID":"{{{poolId}}}","Address":"nonsense"}""", 400);
        await Refused("/NetworkDriver.NoSuchMethod", "{}", 404);
        // Over 1 MiB: refused before it is read (413, or the connection closed while the client still sends), nothing changed.
        string before = Snapshot();
        try
        {
            var (status, _, _) = await Call("/IpamDriver.RequestPool", "{\"Pool\":\"" + new string('a', 2 << 20) + "\"}");
            Assert.True(status is 400 or 413, $"an oversized body got {status}");
        }
        catch (HttpRequestException) { }
        Assert.Equal(before, Snapshot());
        await Ok("/Plugin.Activate", ""); // and the plugin still answers
        Assert.Single(_manager.GetEndpoints("blue"));
    }

    [Fact]
    public async Task A_restarted_daemon_knows_Docker_s_networks_endpoints_and_pools()
    {
        string poolId = await CreateBlue();
        string a = (await Ok("/IpamDriver.RequestAddress", $$$"""{"PoolID":"{{{poolId}}}","Address":"","Options":{}}""")).GetProperty("Address").GetString()!;
        await Ok("/NetworkDriver.CreateEndpoint", $$$"""{"NetworkID":"{{{NetId}}}","EndpointID":"{{{EpId}}}","Interface":{"Address":"{{{a}}}"}}""");
        string pending = (await Ok("/IpamDriver.RequestAddress", $$$"""{"PoolID":"{{{poolId}}}","Address":"","Options":{}}""")).GetProperty("Address").GetString()!;

        await StopAsync();
        await StartAsync(); // a new manager and plugin over the same state directory

        var ep = Assert.Single(_manager.GetEndpoints("blue"));
        Assert.True(ep.HandOff); // not joined: its TAP is made again in the daemon's namespace, for Join
        var join = await Ok("/NetworkDriver.Join", $$$"""{"NetworkID":"{{{NetId}}}","EndpointID":"{{{EpId}}}","SandboxKey":"/var/run/docker/netns/abc"}""");
        Assert.Equal(ep.Interface, join.GetProperty("InterfaceName").GetProperty("SrcName").GetString());
        // The address promised before the restart is still promised.
        string next = (await Ok("/IpamDriver.RequestAddress", $$$"""{"PoolID":"{{{poolId}}}","Address":"","Options":{}}""")).GetProperty("Address").GetString()!;
        Assert.NotEqual(pending, next);
        Assert.NotEqual(a, next);
        await Refused("/IpamDriver.RequestAddress", $$$"""{"PoolID":"{{{poolId}}}","Address":"{{{pending.Split('/')[0]}}}"}""", 409);
    }
}
