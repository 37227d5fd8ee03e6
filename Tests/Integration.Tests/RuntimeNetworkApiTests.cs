using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Text;
using System.Text.Json;
using UserOverlay.Cli.Daemon;
using UserOverlay.Testing.Common;

namespace UserOverlay.Integration.Tests;

/// <summary>
/// Networks, endpoints and workloads at run time against the real daemon (`useroverlay up` in a host namespace), over
/// its control socket's HTTP API (the contract in Cli/Daemon/ControlApi.cs): real TAPs in namespaces, real pings,
/// restarts over the same state directory, a non-root caller, and two gossip hosts.
/// </summary>
public sealed class RuntimeNetworkApiTests
{
    /// <summary>An error answer: the status, the code, and a message that is one sentence starting with the field.</summary>
    private static async Task ExpectError(ControlHttp api, int status, string code, string fieldPrefix, HttpMethod method, string path, string? json = null)
    {
        var (s, j, body) = await api.Send(method, path, json);
        Assert.True(s == status, $"{method} {path} {json}: expected {status} {code}, got {s}: {body}");
        Assert.Equal(code, j.GetProperty("code").GetString());
        string message = j.GetProperty("message").GetString()!;
        Assert.StartsWith(fieldPrefix, message);
        Assert.DoesNotContain('\n', message);
    }

    private static bool HasInterface(string ns, string name = "eth0") => TestNetwork.Exec(ns, $"ip link show {name}").ExitCode == 0;

    private static string Config(string? extra = null) => $$"""
        underlay: { address: 192.0.2.1 }
        peers: [192.0.2.2]
        networks: [ { name: blue, vni: 4097, subnet: 198.18.0.0/24, gateway: 198.18.0.1 } ]
        {{extra}}
        """;

    private static RouterProcess Router(TestNetwork net, string host, string config, string stateDir, string name = "h1") =>
        new(net, host, $"{net.Prefix}{name}", config) { ExtraArguments = ["--state-dir", stateDir] };

    private static string StateDir(TestNetwork net) => Path.Combine(Path.GetTempPath(), $"{net.Prefix}state");

    private static void RemoveDir(string dir)
    {
        try { Directory.Delete(dir, recursive: true); } catch (DirectoryNotFoundException) { }
    }

    [Fact]
    public async Task A_network_created_at_run_time_connects_namespaces_that_ping_each_other_and_the_gateway_and_survives_a_restart()
    {
        Requires.Root();
        Requires.Tool("ping", "iputils-ping");
        using var net = new TestNetwork("ra");
        string host = net.AddHost("h1", "192.0.2.1/24");
        string c1 = net.AddNamespace("c1"), a = net.AddNamespace("a"), b = net.AddNamespace("b");
        string state = StateDir(net);
        try
        {
            using var router = Router(net, host, Config($"endpoints: [ {{ network: blue, netns: {c1}, address: 198.18.0.11/24 }} ]"), state);
            await router.StartAsync();
            using var api = new ControlHttp(ControlApi.SocketPath(router.Name));

            var green = await api.Expect(201, HttpMethod.Post, "v1/networks", """{"name":"green","subnet":"198.18.4.0/24","vni":5000}""");
            Assert.Equal("green", green.GetProperty("Name").GetString());
            var ipam = green.GetProperty("IPAM").GetProperty("Config")[0];
            Assert.Equal(("198.18.4.0/24", "198.18.4.1"), (ipam.GetProperty("Subnet").GetString(), ipam.GetProperty("Gateway").GetString()));
            Assert.Equal("5000", green.GetProperty("Options").GetProperty("com.docker.network.driver.overlay.vxlanid_list").GetString());
            string greenId = green.GetProperty("Id").GetString()!;

            var ea = await api.Expect(201, HttpMethod.Post, "v1/networks/green/connect", $$"""{"netns":"{{a}}"}""");
            Assert.Equal(("198.18.4.2/24", "02:00:c6:12:04:02", "eth0", "green", greenId), (ea.GetProperty("ipv4_address").GetString(),
                ea.GetProperty("mac_address").GetString(), ea.GetProperty("interface").GetString(), ea.GetProperty("network").GetString(), ea.GetProperty("network_id").GetString()));
            await api.Expect(201, HttpMethod.Post, $"v1/networks/{greenId[..12]}/connect", $$"""{"netns":"{{b}}","name":"web","address":"198.18.4.20"}""");
            Assert.Contains("198.18.4.2/24", TestNetwork.Exec(a, "ip -4 addr show eth0").StdOut);
            Assert.True(TestNetwork.Ping(a, "198.18.4.20"), "a → b on the run-time network");
            Assert.True(TestNetwork.Ping(b, "198.18.4.1"), "b → the gateway, answered by the router");

            // Docker's inspect shape, the endpoints in Containers.
            var inspect = await api.Expect(200, HttpMethod.Get, "v1/networks/green");
            var containers = inspect.GetProperty("Containers").EnumerateObject().Select(p => p.Value).ToList();
            Assert.Equal([(a, "02:00:c6:12:04:02", "198.18.4.2/24"), ("web", "02:00:c6:12:04:14", "198.18.4.20/24")],
                containers.Select(c => (c.GetProperty("Name").GetString(), c.GetProperty("MacAddress").GetString(), c.GetProperty("IPv4Address").GetString())).OrderBy(x => x.Item3));
            // The file's network is there too, with its endpoint, and the list is sorted by name.
            var all = await api.Expect(200, HttpMethod.Get, "v1/networks");
            Assert.Equal(["blue", "green"], all.EnumerateArray().Select(n => n.GetProperty("Name").GetString()));
            Assert.Equal("198.18.0.11/24", all[0].GetProperty("Containers").EnumerateObject().Single().Value.GetProperty("IPv4Address").GetString());

            // Refused while attached, naming the endpoints.
            var (s, inUse, _) = await api.Delete("v1/networks/green");
            Assert.Equal((409, "in_use"), (s, inUse.GetProperty("code").GetString()));
            Assert.Contains("web", inUse.GetProperty("message").GetString());
            Assert.Contains(a, inUse.GetProperty("message").GetString());

            // Restart over the same state directory: green is back, a and b are attached again, same MAC and address.
            Assert.Equal(0, await router.StopAsync());
            Assert.False(HasInterface(a), "the TAPs go with the router");
            await router.StartAsync();
            var after = await api.Expect(200, HttpMethod.Get, "v1/networks/green");
            Assert.Equal(greenId, after.GetProperty("Id").GetString());
            Assert.Equal(inspect.GetProperty("Containers").ToString(), after.GetProperty("Containers").ToString());
            Assert.True(TestNetwork.Ping(a, "198.18.4.20"), "a → b after the restart");

            var gone = await api.Expect(200, HttpMethod.Post, "v1/networks/green/disconnect", """{"name":"web"}""");
            Assert.Equal("198.18.4.20/24", gone.GetProperty("ipv4_address").GetString());
            Assert.False(HasInterface(b), "b's TAP is gone");
            await api.Expect(200, HttpMethod.Post, "v1/networks/green/disconnect", $$"""{"netns":"{{a}}"}""");
            await api.Expect(204, HttpMethod.Delete, "v1/networks/green");
            await ExpectError(api, 404, "not_found", "network:", HttpMethod.Get, "v1/networks/green");
            Assert.DoesNotContain((await router.StatusAsync()).Networks, n => n.Name == "green");
            Assert.True(TestNetwork.Ping(c1, "198.18.0.1"), "the file names a gateway for its network, and the router answers for it too");
        }
        finally { RemoveDir(state); }
    }

    [Fact]
    public async Task A_file_that_changes_a_network_with_run_time_endpoints_on_it_stops_the_start_with_one_sentence_and_the_old_file_starts_again()
    {
        Requires.Root();
        Requires.Tool("ping", "iputils-ping");
        using var net = new TestNetwork("rf");
        string host = net.AddHost("h1", "192.0.2.1/24");
        string a = net.AddNamespace("a");
        string state = StateDir(net);
        try
        {
            using var router = Router(net, host, Config(), state);
            await router.StartAsync();
            using (var api = new ControlHttp(ControlApi.SocketPath(router.Name)))
                await api.Expect(201, HttpMethod.Post, "v1/networks/blue/connect", $$"""{"netns":"{{a}}","name":"web"}""");
            Assert.Equal(0, await router.StopAsync());

            string original = File.ReadAllText(router.ConfigPath);
            File.WriteAllText(router.ConfigPath, original.Replace("vni: 4097", "vni: 4099"));
            var r = router.Cli("up", "--config", router.ConfigPath, "--name", router.Name, "--state-dir", state);
            Assert.Equal(1, r.ExitCode);
            Assert.Contains("networks[0] 'blue' differs from the stored network of that name (VNI 4097 stored, 4099 in the file)", r.StdErr);
            Assert.Contains("'web'", r.StdErr);
            Assert.DoesNotContain("   at ", r.StdErr);
            Assert.False(HasInterface(a));

            File.WriteAllText(router.ConfigPath, original);
            await router.StartAsync();
            Assert.True(TestNetwork.Ping(a, "198.18.0.1"), "the run-time endpoint on the file's network is back");
        }
        finally { RemoveDir(state); }
    }

    [Fact]
    public async Task Each_bad_input_gets_its_status_code_and_field_and_leaves_no_TAP_and_no_address_behind()
    {
        Requires.Root();
        using var net = new TestNetwork("rb");
        string host = net.AddHost("h1", "192.0.2.1/24");
        string a = net.AddNamespace("a"), b = net.AddNamespace("b"), c = net.AddNamespace("c");
        string state = StateDir(net);
        try
        {
            using var router = Router(net, host, Config(), state);
            await router.StartAsync();
            using var api = new ControlHttp(ControlApi.SocketPath(router.Name));
            var post = HttpMethod.Post;
            await api.Expect(201, post, "v1/networks", """{"name":"green","subnet":"198.18.4.0/24","vni":5000}""");

            await ExpectError(api, 409, "conflict", "subnet:", post, "v1/networks", """{"name":"x","subnet":"198.18.4.128/25"}""");
            await ExpectError(api, 409, "conflict", "subnet:", post, "v1/networks", """{"name":"x","subnet":"198.18.0.0/16"}"""); // the file's blue
            await ExpectError(api, 409, "conflict", "name:", post, "v1/networks", """{"name":"green","subnet":"198.18.6.0/24"}""");
            await ExpectError(api, 409, "conflict", "vni:", post, "v1/networks", """{"name":"y","subnet":"198.18.6.0/24","vni":5000}""");
            await ExpectError(api, 409, "conflict", "vni:", post, "v1/networks", """{"name":"y","subnet":"198.18.6.0/24","vni":4097}""");
            await ExpectError(api, 400, "invalid_argument", "gateway:", post, "v1/networks", """{"name":"z","subnet":"198.18.7.0/24","gateway":"198.18.8.1"}""");
            // Encrypted at run time: no key can come with the request, and the file holds none for this name.
            await ExpectError(api, 400, "invalid_argument", "opt: encrypted needs a key for 'z'", post, "v1/networks", """{"name":"z","subnet":"198.18.7.0/24","encrypted":true}""");
            await ExpectError(api, 400, "invalid_argument", "mtu:", post, "v1/networks", """{"name":"z","subnet":"198.18.7.0/24","mtu":100}""");
            await ExpectError(api, 400, "bad_request", "the request body", post, "v1/networks", """{"name":""");
            Assert.Equal(["blue", "green"], (await api.Expect(200, HttpMethod.Get, "v1/networks")).EnumerateArray().Select(n => n.GetProperty("Name").GetString()));

            await ExpectError(api, 404, "not_found", "network:", post, "v1/networks/nosuch/connect", $$"""{"netns":"{{a}}"}""");
            await ExpectError(api, 404, "not_found", "netns:", post, "v1/networks/green/connect", $$"""{"netns":"{{net.Prefix}}missing","address":"198.18.4.60"}""");
            await ExpectError(api, 400, "invalid_argument", "ip:", post, "v1/networks/green/connect", $$"""{"netns":"{{a}}","address":"198.18.9.5"}""");
            Assert.False(HasInterface(a), "no TAP after a refused connect");
            await api.Expect(201, post, "v1/networks/green/connect", $$"""{"netns":"{{a}}","address":"198.18.4.60"}"""); // .60 was not consumed
            await ExpectError(api, 409, "conflict", "ip:", post, "v1/networks/green/connect", $$"""{"netns":"{{b}}","address":"198.18.4.60"}""");
            Assert.False(HasInterface(b), "no TAP after a refused connect");
            await ExpectError(api, 409, "conflict", "netns:", post, "v1/networks/green/connect", $$"""{"netns":"{{a}}"}""");

            // An interface of that name exists in the namespace (not one of the router's): refused, its address not kept.
            TestNetwork.Exec(b, "ip link add eth0 type veth peer name eth0p").EnsureSuccess();
            await ExpectError(api, 409, "conflict", "interface:", post, "v1/networks/green/connect", $$"""{"netns":"{{b}}","address":"198.18.4.70"}""");
            Assert.Equal("veth", JsonDocument.Parse(TestNetwork.Exec(b, "ip -j -d link show eth0").StdOut).RootElement[0].GetProperty("linkinfo").GetProperty("info_kind").GetString());
            await api.Expect(201, post, "v1/networks/green/connect", $$"""{"netns":"{{c}}","address":"198.18.4.70"}""");
            var status = (await router.StatusAsync()).Networks.Single(n => n.Name == "green");
            Assert.Equal(["198.18.4.60/24", "198.18.4.70/24"], status.Endpoints.Select(e => e.Address).Order());
            Assert.Equal(2, (await api.Expect(200, HttpMethod.Get, "v1/networks/green")).GetProperty("Containers").EnumerateObject().Count());

            await ExpectError(api, 404, "not_found", "netns:", post, "v1/networks/green/disconnect", $$"""{"netns":"{{b}}"}""");
            await ExpectError(api, 404, "not_found", "network:", HttpMethod.Delete, "v1/networks/nosuch");
        }
        finally { RemoveDir(state); }
    }

    [Fact]
    public async Task A_caller_that_is_not_root_may_read_but_not_change_and_the_socket_is_0660_in_a_0755_directory()
    {
        Requires.Root();
        string curl = Requires.Tool("curl", "curl");
        string setpriv = Requires.Tool("setpriv", "util-linux");
        using var net = new TestNetwork("rc");
        string host = net.AddHost("h1", "192.0.2.1/24");
        string state = StateDir(net);
        try
        {
            using var router = Router(net, host, Config(), state);
            await router.StartAsync();
            string socket = ControlApi.SocketPath(router.Name);
            Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.GroupRead | UnixFileMode.GroupWrite, File.GetUnixFileMode(socket));
            Assert.Equal((UnixFileMode)0b111_101_101, File.GetUnixFileMode(ControlApi.SocketDirectory));

            // uid 65534 (nobody) with gid 0: the socket's group lets it connect; what it may do is decided by its uid.
            // The body, then the status on the last line.
            (string Status, string Body) AsNobody(params string[] args)
            {
                var r = Shell.Run(setpriv, ["--reuid=65534", "--regid=0", "--clear-groups", curl, "-s", "-w", "\n%{http_code}", "--unix-socket", socket, .. args]);
                string o = r.StdOut.TrimEnd();
                int nl = o.LastIndexOf('\n');
                return (o[(nl + 1)..], nl < 0 ? "" : o[..nl]);
            }
            var post = AsNobody("-X", "POST", "-d", """{"name":"green","subnet":"198.18.4.0/24"}""", "http://useroverlay/v1/networks");
            Assert.Equal("403", post.Status);
            Assert.Equal("permission_denied", JsonDocument.Parse(post.Body).RootElement.GetProperty("code").GetString());
            Assert.Contains("you are uid 65534", JsonDocument.Parse(post.Body).RootElement.GetProperty("message").GetString());
            Assert.Equal("403", AsNobody("-X", "DELETE", "http://useroverlay/v1/networks/blue").Status);
            Assert.Equal("403", AsNobody("http://useroverlay/v1/sa").Status);
            Assert.Equal("200", AsNobody("http://useroverlay/v1/status").Status);
            Assert.Equal("200", AsNobody("http://useroverlay/v1/networks").Status);
            using var api = new ControlHttp(socket);
            Assert.Equal(["blue"], (await api.Expect(200, HttpMethod.Get, "v1/networks")).EnumerateArray().Select(n => n.GetProperty("Name").GetString()));
        }
        finally { RemoveDir(state); }
    }

    [Fact]
    public async Task A_workload_gets_a_fresh_namespace_on_its_networks_and_goes_when_its_client_exits_or_is_deleted()
    {
        Requires.Root();
        Requires.Tool("ping", "iputils-ping");
        using var net = new TestNetwork("rw");
        string host = net.AddHost("h1", "192.0.2.1/24");
        string a = net.AddNamespace("a");
        string state = StateDir(net);
        string w1 = $"{net.Prefix}w1", w2 = $"{net.Prefix}w2", w3 = $"{net.Prefix}w3";
        var client = Process.Start(new ProcessStartInfo("sleep", "300") { UseShellExecute = false })!;
        try
        {
            using var router = Router(net, host, Config($"endpoints: [ {{ network: blue, netns: {a}, address: 198.18.0.11/24 }} ]"), state);
            await router.StartAsync();
            using var api = new ControlHttp(ControlApi.SocketPath(router.Name));
            await api.Expect(201, HttpMethod.Post, "v1/networks", """{"name":"green","subnet":"198.18.4.0/24"}""");

            var w = await api.Expect(201, HttpMethod.Post, "v1/workloads",
                $$"""{"name":"{{w1}}","networks":[{"network":"blue","address":"198.18.0.50"},{"network":"green"}],"detached":false,"client_pid":{{client.Id}}}""");
            Assert.Equal(($"uo-{w1}", $"/run/netns/uo-{w1}", client.Id), (w.GetProperty("netns").GetString(), w.GetProperty("netns_path").GetString(), w.GetProperty("client_pid").GetInt32()));
            Assert.Equal(["198.18.0.50/24", "198.18.4.2/24"], w.GetProperty("endpoints").EnumerateArray().Select(e => e.GetProperty("ipv4_address").GetString()));
            Assert.Equal(["eth0", "eth1"], w.GetProperty("endpoints").EnumerateArray().Select(e => e.GetProperty("interface").GetString()).Order());
            Assert.True(TestNetwork.Ping($"uo-{w1}", "198.18.0.11"), "the workload pings the file's endpoint:\n"
                + TestNetwork.Exec($"uo-{w1}", "ip addr").StdOut + TestNetwork.Exec($"uo-{w1}", "ip route").StdOut + TestNetwork.Exec($"uo-{w1}", "ping -c1 -W1 198.18.0.11").StdOut);
            Assert.Contains(w1, (await api.Expect(200, HttpMethod.Get, "v1/workloads")).EnumerateArray().Select(x => x.GetProperty("name").GetString()));

            // A failure half way (the second network does not exist) undoes everything: no namespace, no endpoint.
            await ExpectError(api, 404, "not_found", "network:", HttpMethod.Post, "v1/workloads", $$"""{"name":"{{w2}}","networks":[{"network":"blue"},{"network":"nosuch"}],"detached":true}""");
            Assert.False(File.Exists($"/run/netns/uo-{w2}"));
            await ExpectError(api, 409, "conflict", "ip:", HttpMethod.Post, "v1/workloads", $$"""{"name":"{{w2}}","networks":[{"network":"green"},{"network":"blue","address":"198.18.0.50"}],"detached":true}""");
            Assert.False(File.Exists($"/run/netns/uo-{w2}"));
            Assert.Single((await api.Expect(200, HttpMethod.Get, "v1/networks/green")).GetProperty("Containers").EnumerateObject());

            // The client exits: the daemon removes the workload (namespace and endpoints) by itself.
            client.Kill();
            await client.WaitForExitAsync(TestContext.Current.CancellationToken);
            await Eventually.True(() => !File.Exists($"/run/netns/uo-{w1}"), TimeSpan.FromSeconds(10), "the workload's namespace goes with its client");
            Assert.Empty((await api.Expect(200, HttpMethod.Get, "v1/networks/green")).GetProperty("Containers").EnumerateObject());
            Assert.Empty((await api.Expect(200, HttpMethod.Get, "v1/workloads")).EnumerateArray());

            // Detached: stays until DELETE; one whose namespace vanished while the daemon was down is released at start.
            await api.Expect(201, HttpMethod.Post, "v1/workloads", $$"""{"name":"{{w2}}","networks":[{"network":"green"}],"detached":true}""");
            await api.Expect(201, HttpMethod.Post, "v1/workloads", $$"""{"name":"{{w3}}","networks":[{"network":"green"}],"detached":true}""");
            Assert.Equal(0, await router.StopAsync());
            Shell.Must($"ip netns del uo-{w3}");
            await router.StartAsync();
            Assert.Equal([w2], (await api.Expect(200, HttpMethod.Get, "v1/workloads")).EnumerateArray().Select(x => x.GetProperty("name").GetString()));
            Assert.True(TestNetwork.Ping($"uo-{w2}", "198.18.4.1"), "the restored workload is attached again");
            Assert.Single((await api.Expect(200, HttpMethod.Get, "v1/networks/green")).GetProperty("Containers").EnumerateObject());
            await api.Expect(204, HttpMethod.Delete, $"v1/workloads/{w2}");
            Assert.False(File.Exists($"/run/netns/uo-{w2}"));
            Assert.Empty((await api.Expect(200, HttpMethod.Get, "v1/networks/green")).GetProperty("Containers").EnumerateObject());
            await ExpectError(api, 404, "not_found", "name:", HttpMethod.Delete, $"v1/workloads/{w2}");
        }
        finally
        {
            if (!client.HasExited) client.Kill();
            foreach (string n in new[] { w1, w2, w3 })
                if (File.Exists($"/run/netns/uo-{n}")) Shell.Run("ip", ["netns", "del", $"uo-{n}"]);
            RemoveDir(state);
        }
    }

    [Fact]
    public async Task In_gossip_mode_endpoints_connected_at_run_time_to_a_run_time_network_ping_across_hosts_without_static_entries()
    {
        Requires.Root();
        Requires.Tool("ping", "iputils-ping");
        using var net = new TestNetwork("rg");
        var hosts = new[] { net.AddHost("h1", "192.0.2.1/24"), net.AddHost("h2", "192.0.2.2/24") };
        string a = net.AddNamespace("a"), b = net.AddNamespace("b");
        string state = StateDir(net);
        string Config(int i) => $$"""
            underlay: { address: 192.0.2.{{i}} }
            gossip: { bind: 192.0.2.{{i}}, join: [192.0.2.1], name: h{{i}}, probe_interval: 500ms, push_pull_interval: 10s }
            networks: [ { name: blue, vni: 4097, subnet: 198.18.0.0/24 } ]
            """;
        try
        {
            using var r1 = Router(net, hosts[0], Config(1), state + "1", "h1");
            using var r2 = Router(net, hosts[1], Config(2), state + "2", "h2");
            await r1.StartAsync();
            await r2.StartAsync();
            using var api1 = new ControlHttp(ControlApi.SocketPath(r1.Name));
            using var api2 = new ControlHttp(ControlApi.SocketPath(r2.Name));
            foreach (var api in new[] { api1, api2 })
                await api.Expect(201, HttpMethod.Post, "v1/networks", """{"name":"green","subnet":"198.18.4.0/24","vni":5000}""");
            await api1.Expect(201, HttpMethod.Post, "v1/networks/green/connect", $$"""{"netns":"{{a}}","address":"198.18.4.11"}""");
            await api2.Expect(201, HttpMethod.Post, "v1/networks/green/connect", $$"""{"netns":"{{b}}","address":"198.18.4.12"}""");

            string macB = GossipFixture.Mac("198.18.4.12");
            await Eventually.True(async () => (await r1.StatusAsync()).Networks.Single(n => n.Name == "green").Fdb.Any(e => e.Mac == macB && e.Source == "gossip"),
                TimeSpan.FromSeconds(30), "h1 learns b by gossip");
            Assert.True(TestNetwork.Ping(a, "198.18.4.12"), "a on h1 → b on h2");
            var green = (await r1.StatusAsync()).Networks.Single(n => n.Name == "green");
            Assert.DoesNotContain(green.Fdb, e => e.Source is "static" or "learned");
            Assert.Equal(["192.0.2.2:4789"], green.FloodList);

            // Disconnected: withdrawn at once, so h1 forgets it.
            await api2.Expect(200, HttpMethod.Post, "v1/networks/green/disconnect", $$"""{"netns":"{{b}}"}""");
            await Eventually.True(async () => !(await r1.StatusAsync()).Networks.Single(n => n.Name == "green").Fdb.Any(e => e.Mac == macB),
                TimeSpan.FromSeconds(10), "h1 drops b once it is disconnected");
        }
        finally
        {
            RemoveDir(state + "1");
            RemoveDir(state + "2");
        }
    }

    [Fact]
    public async Task An_encrypted_network_created_at_run_time_with_a_key_file_carries_only_ESP_across_hosts_and_comes_back_after_a_restart()
    {
        Requires.Root();
        Requires.Tool("ping", "iputils-ping");
        string tcpdump = Requires.Tool("tcpdump", "tcpdump");
        using var net = new TestNetwork("re");
        var hosts = new[] { net.AddHost("h1", "192.0.2.1/24"), net.AddHost("h2", "192.0.2.2/24") };
        string a = net.AddNamespace("a"), b = net.AddNamespace("b");
        string state = StateDir(net);
        string keys = Path.Combine(Path.GetTempPath(), $"{net.Prefix}keys");
        Directory.CreateDirectory(keys);
        string keyFile = Path.Combine(keys, "secret.key"), shortKey = Path.Combine(keys, "short.key"), rawKey = Path.Combine(keys, "raw.key");
        File.WriteAllText(keyFile, Convert.ToBase64String(System.Security.Cryptography.RandomNumberGenerator.GetBytes(32)) + "\n");
        File.WriteAllText(shortKey, Convert.ToBase64String(new byte[20]));
        File.WriteAllBytes(rawKey, new byte[7]);
        // No network of the file is encrypted: its encryption: section is what gives the router ESP.
        string Config(int i) => $$"""
            underlay: { address: 192.0.2.{{i}} }
            peers: [192.0.2.{{3 - i}}]
            encryption: { state_dir: {{state}}esp }
            networks: [ { name: blue, vni: 4097, subnet: 198.18.0.0/24 } ]
            """;
        static string Create(string options) => """{"name":"secret","subnet":"198.18.5.0/24","vni":4200,"options":""" + options + "}";
        try
        {
            using var r1 = Router(net, hosts[0], Config(1), state + "1", "h1");
            using var r2 = Router(net, hosts[1], Config(2), state + "2", "h2");
            await r1.StartAsync();
            await r2.StartAsync();
            using var api1 = new ControlHttp(ControlApi.SocketPath(r1.Name));
            using var api2 = new ControlHttp(ControlApi.SocketPath(r2.Name));

            // Bad inputs: each refused with the field, nothing made.
            await ExpectError(api1, 400, "invalid_argument", "opt: key_file is given but the network is not encrypted", HttpMethod.Post, "v1/networks", Create($$"""{"key_file":"{{keyFile}}"}"""));
            await ExpectError(api1, 400, "invalid_argument", "opt: key_file 'secret.key' must be an absolute path", HttpMethod.Post, "v1/networks", Create("""{"encrypted":"","key_file":"secret.key"}"""));
            await ExpectError(api1, 400, "invalid_argument", "opt: cannot read key_file", HttpMethod.Post, "v1/networks", Create($$"""{"encrypted":"","key_file":"{{keys}}/missing.key"}"""));
            await ExpectError(api1, 400, "invalid_argument", "opt: key_file", HttpMethod.Post, "v1/networks", Create($$"""{"encrypted":"","key_file":"{{shortKey}}"}"""));
            await ExpectError(api1, 400, "invalid_argument", "opt: key_file", HttpMethod.Post, "v1/networks", Create($$"""{"encrypted":"","key_file":"{{rawKey}}"}"""));
            await ExpectError(api1, 400, "invalid_argument", "opt: encrypted needs a key for 'secret'", HttpMethod.Post, "v1/networks", Create("""{"encrypted":""}"""));
            await ExpectError(api1, 404, "not_found", "network:", HttpMethod.Get, "v1/networks/secret");

            foreach (var api in new[] { api1, api2 })
            {
                var made = await api.Expect(201, HttpMethod.Post, "v1/networks", Create($$"""{"encrypted":"","key_file":"{{keyFile}}"}"""));
                Assert.Equal(keyFile, made.GetProperty("Options").GetProperty("key_file").GetString()); // the path, never the key
            }
            await api1.Expect(201, HttpMethod.Post, "v1/networks/secret/connect", $$"""{"netns":"{{a}}","address":"198.18.5.11"}""");
            await api2.Expect(201, HttpMethod.Post, "v1/networks/secret/connect", $$"""{"netns":"{{b}}","address":"198.18.5.12"}""");
            Assert.DoesNotContain(File.ReadAllText(keyFile).Trim(), string.Join("", Directory.GetFiles(state + "1", "*", SearchOption.AllDirectories).Select(File.ReadAllText)));

            // The underlay of h1 while a pings b: ESP in the default wire form (ESP-in-UDP, port 4500), and no VXLAN in clear for VNI 4200
            // (two captures, one line per packet: "-l" to stdout, which is what this machine's tcpdump reports reliably).
            var esp = new List<string>();
            var plain = new List<string>();
            var listening = new[] { new TaskCompletionSource(), new TaskCompletionSource() };
            Process Capture(string filter, List<string> lines, TaskCompletionSource ready) => net.Start(hosts[0], tcpdump, ["-i", "eth0", "-l", "-n", filter], line =>
            {
                if (line.Contains("listening on", StringComparison.Ordinal)) ready.TrySetResult();
                else if (line.Contains(" IP ", StringComparison.Ordinal)) lock (lines) lines.Add(line);
            });
            var caps = new[] { Capture("udp port 4500", esp, listening[0]), Capture("udp port 4789 and (udp[12:4] >> 8) = 4200", plain, listening[1]) };
            await Task.WhenAll(listening.Select(l => l.Task)).WaitAsync(TimeSpan.FromSeconds(20), TestContext.Current.CancellationToken);
            Assert.True(TestNetwork.Ping(a, "198.18.5.12", count: 5, interval: 0.1, minReplies: 5), "a on h1 → b on h2 over the encrypted run-time network");
            await Task.Delay(500, TestContext.Current.CancellationToken);
            foreach (var cap in caps)
            {
                Shell.Run("kill", ["-INT", cap.Id.ToString(System.Globalization.CultureInfo.InvariantCulture)]);
                await cap.WaitForExitAsync(TestContext.Current.CancellationToken);
            }
            lock (esp) Assert.True(esp.Count >= 10, $"expected ≥ 10 ESP packets (5 echo requests, 5 replies), saw {esp.Count}");
            lock (plain) Assert.Empty(plain);
            Assert.Equal(0, (await r1.StatusAsync()).Esp!.Dropped.Values.Sum());

            // Restart: the key is read again from the stored path, and the network works as before.
            Assert.Equal(0, await r1.StopAsync());
            await r1.StartAsync();
            Assert.True(TestNetwork.Ping(a, "198.18.5.12", count: 3, interval: 0.2, minReplies: 3), "a → b after h1 restarts");

            // Removed: the key goes with the network, so the same name without key_file is refused again.
            await api1.Expect(200, HttpMethod.Post, "v1/networks/secret/disconnect", $$"""{"netns":"{{a}}"}""");
            await api1.Expect(204, HttpMethod.Delete, "v1/networks/secret");
            await ExpectError(api1, 400, "invalid_argument", "opt: encrypted needs a key for 'secret'", HttpMethod.Post, "v1/networks", Create("""{"encrypted":""}"""));

            // A key file gone while the daemon is down: the restore stops the start, naming the network and the file.
            string moved = Path.Combine(keys, "moved.key");
            File.Copy(keyFile, moved);
            await api1.Expect(201, HttpMethod.Post, "v1/networks", Create($$"""{"encrypted":"","key_file":"{{moved}}"}"""));
            Assert.Equal(0, await r1.StopAsync());
            File.Delete(moved);
            r1.Launch();
            Assert.NotEqual(0, await r1.WaitForExitAsync());
            Assert.Contains($"cannot restore network 'secret'", r1.Output);
            Assert.Contains($"cannot read key_file '{moved}' of network 'secret': no such file", r1.Output);
            File.Copy(keyFile, moved);
            await r1.StartAsync(); // the file back: the network is back
            Assert.Contains((await r1.StatusAsync()).Networks, n => n.Name == "secret");
        }
        finally
        {
            RemoveDir(state + "1");
            RemoveDir(state + "2");
            RemoveDir(state + "esp");
            RemoveDir(keys);
        }
    }
}
