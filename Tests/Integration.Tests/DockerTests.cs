using System.Diagnostics;
using System.Security.Cryptography;
using System.Text.Json;
using UserOverlay.Testing.Common;

namespace UserOverlay.Integration.Tests;

/// <summary>
/// Real Docker on UserOverlay: two hosts in namespaces (underlay 192.0.2.0/24), each with its own dockerd (its own
/// mount namespace, data root, exec root, pid file and plugins directory bind-mounted on /run/docker/plugins; a
/// daemon.json with bridge none, iptables false, ip-masq false, default-address-pools in 198.18.0.0/15) and its own
/// router serving the plugin. Images come from busybox-static through `docker import`. Containers started by
/// `docker run` ping each other and move 20 MB intact over an encrypted network, `docker network connect` adds a
/// second one (bound to a network `useroverlay network create` made), a restarted router gives the running
/// containers their interfaces back, and stop + rm leave no TAP, endpoint, address or FDB entry behind.
/// </summary>
public sealed class DockerTests
{
    private const string DockerCli = DockerHost.DockerCli;
    private const string Image = "uo-busybox";

    [Fact]
    public async Task Containers_on_two_hosts_ping_move_20_MB_encrypted_connect_a_second_network_survive_a_router_restart_and_leave_nothing()
    {
        string dockerd = DockerHost.RequireDocker();
        string root = Directory.CreateTempSubdirectory("uodk-").FullName;
        try
        {
            using var net = new TestNetwork("dk");
            string gossipKey = Convert.ToBase64String(RandomNumberGenerator.GetBytes(32));
            using var h1 = new DockerHost(net, 1, root, gossipKey, dockerd);
            using var h2 = new DockerHost(net, 2, root, gossipKey, dockerd);
            await Task.WhenAll(h1.StartAsync(2), h2.StartAsync(1));
            await Run(root, h1, h2);
        }
        finally
        {
            try { Directory.Delete(root, recursive: true); } catch (IOException) { }
        }
    }

    private static async Task Run(string root, DockerHost h1, DockerHost h2)
    {
        DockerHost[] hosts = [h1, h2];
        // The image: busybox-static's binary and its applets, imported (no registry).
        string rootfs = Path.Combine(root, "rootfs");
        Directory.CreateDirectory(Path.Combine(rootfs, "bin"));
        Directory.CreateDirectory(Path.Combine(rootfs, "tmp"));
        File.Copy("/bin/busybox", Path.Combine(rootfs, "bin", "busybox"));
        Shell.Run("chroot", [rootfs, "/bin/busybox", "--install", "-s", "/bin"]).EnsureSuccess();
        string key = Path.Combine(root, "blue.key");
        File.WriteAllText(key, Convert.ToBase64String(RandomNumberGenerator.GetBytes(32)));
        foreach (var h in hosts)
        {
            Shell.Run("sh", ["-c", $"tar -C {rootfs} -c . | {DockerCli} -H unix://{h.Socket} import - {Image}"], TimeSpan.FromSeconds(60)).EnsureSuccess();
            // blue: made by Docker (encrypted, the same VNI and key file on both hosts); green: made by useroverlay, then bound by
            // Docker (by name and subnet: `--ip` needs a subnet Docker was given).
            h.Must("network", "create", "-d", "useroverlay", "--ipam-driver", "useroverlay", "--subnet", "198.18.40.0/24", "-o", "encrypted",
                "-o", "key_file=" + key, "-o", "com.docker.network.driver.overlay.vxlanid_list=4140", "-o", "name=blue", "blue");
            h.Cli("network", "create", "--subnet", "198.18.41.0/24", "--vni", "4141", "green").EnsureSuccess();
            h.Must("network", "create", "-d", "useroverlay", "--ipam-driver", "useroverlay", "--subnet", "198.18.41.0/24", "--ipam-opt", "network=green", "green");
        }
        using (var inspect = JsonDocument.Parse(h1.Cli("network", "inspect", "blue").EnsureSuccess().StdOut))
            Assert.True(inspect.RootElement[0].GetProperty("Options").TryGetProperty("encrypted", out _));

        h1.Must("run", "-d", "--name", "c1", "--network", "blue", "--ip", "198.18.40.11", Image, "/bin/sleep", "600");
        h2.Must("run", "-d", "--name", "c2", "--network", "blue", "--ip", "198.18.40.12", Image, "/bin/sleep", "600");
        foreach (var h in hosts)
        {
            Assert.DoesNotContain("docker_gwbridge", h.Must("network", "ls", "--format", "{{.Name}}"));
            Assert.DoesNotContain("docker_gwbridge", Shell.Run("ip", ["-n", h.Namespace, "-o", "link"]).StdOut);
        }
        string c1Addr = h1.Must("exec", "c1", "ip", "-4", "-o", "addr", "show", "eth0");
        Assert.Contains("198.18.40.11/24", c1Addr);
        Assert.Contains("mtu 1408", h1.Must("exec", "c1", "ip", "link", "show", "eth0")); // the encrypted network's MTU
        await Eventually(() => h1.Docker("exec", "c1", "ping", "-c", "1", "-W", "1", "198.18.40.12").ExitCode == 0, "c1 pings c2 over blue", hosts);
        h1.Must("exec", "c1", "ping", "-c", "3", "-W", "2", "198.18.40.12");
        h2.Must("exec", "c2", "ping", "-c", "3", "-W", "2", "198.18.40.11");

        // 20 MB, checksummed at both ends.
        string sent = h1.Must("exec", "c1", "sh", "-c", "head -c 20971520 /dev/urandom > /tmp/blob && md5sum /tmp/blob").Split(' ')[0];
        h2.Must("exec", "-d", "c2", "sh", "-c", "sleep 120 | nc -l -p 5000 > /tmp/blob");
        await Eventually(() => h2.Docker("exec", "c2", "sh", "-c", "netstat -ltn | grep -q ':5000 '").ExitCode == 0, "c2 listens on 5000", hosts);
        h1.Must("exec", "c1", "sh", "-c", "nc 198.18.40.12 5000 < /tmp/blob");
        await Eventually(() => h2.Docker("exec", "c2", "sh", "-c", "md5sum /tmp/blob").StdOut.StartsWith(sent, StringComparison.Ordinal), "c2 has the 20 MB intact", hosts);
        Assert.Equal("20971520", h2.Must("exec", "c2", "sh", "-c", "wc -c < /tmp/blob").Trim());

        // A second network on the running containers.
        h1.Must("network", "connect", "--ip", "198.18.41.21", "green", "c1");
        h2.Must("network", "connect", "--ip", "198.18.41.22", "green", "c2");
        Assert.Contains("198.18.41.21/24", h1.Must("exec", "c1", "ip", "-4", "-o", "addr", "show", "eth1"));
        await Eventually(() => h1.Docker("exec", "c1", "ping", "-c", "1", "-W", "1", "198.18.41.22").ExitCode == 0, "c1 pings c2 over green", hosts);

        // The router restarts: the containers get their TAPs back (same names, addresses and MACs) and reach each other again.
        string macBefore = h1.Must("exec", "c1", "cat", "/sys/class/net/eth0/address");
        await h1.RestartRouterAsync();
        Assert.Contains("198.18.40.11/24", h1.Must("exec", "c1", "ip", "-4", "-o", "addr", "show", "eth0"));
        Assert.Contains("198.18.41.21/24", h1.Must("exec", "c1", "ip", "-4", "-o", "addr", "show", "eth1"));
        Assert.Equal(macBefore, h1.Must("exec", "c1", "cat", "/sys/class/net/eth0/address"));
        await Eventually(() => h1.Docker("exec", "c1", "ping", "-c", "1", "-W", "1", "198.18.40.12").ExitCode == 0, "c1 pings c2 over blue after the restart", hosts);
        await Eventually(() => h1.Docker("exec", "c1", "ping", "-c", "1", "-W", "1", "198.18.41.22").ExitCode == 0, "c1 pings c2 over green after the restart", hosts);
        h1.Must("network", "disconnect", "green", "c1");
        Assert.NotEqual(0, h1.Docker("exec", "c1", "ip", "link", "show", "eth1").ExitCode);

        // Stop and rm: nothing is left — no TAP in the host, no endpoint or address in the router, no FDB entry anywhere.
        string[] macs = ["02:00:c6:12:28:0b", "02:00:c6:12:28:0c", "02:00:c6:12:29:15", "02:00:c6:12:29:16"];
        h1.Must("stop", "-t", "1", "c1");
        h2.Must("stop", "-t", "1", "c2");
        h1.Must("rm", "c1");
        h2.Must("rm", "c2");
        foreach (var h in hosts)
        {
            await Eventually(() =>
            {
                string status = h.Cli("status", "--json").EnsureSuccess().StdOut;
                return macs.All(m => !status.Contains(m, StringComparison.OrdinalIgnoreCase));
            }, $"{h.Name}: no endpoint or FDB entry of the containers' MACs", hosts);
            var links = Shell.Run("ip", ["-n", h.Namespace, "-o", "link"]).StdOut.Split('\n', StringSplitOptions.RemoveEmptyEntries)
                .Select(l => l.Split(':')[1].Trim().Split('@')[0]).ToList();
            Assert.Contains("eth0", links); // the parse finds the links
            Assert.DoesNotContain(links, l => System.Text.RegularExpressions.Regex.IsMatch(l, "^uo[0-9a-f]{12}$")); // no TAP left waiting for Docker
            foreach (string n in (string[])["blue", "green"])
                using (var inspect = JsonDocument.Parse(h.Cli("network", "inspect", n).EnsureSuccess().StdOut))
                    Assert.Empty(inspect.RootElement[0].GetProperty("Containers").EnumerateObject());
            h.Must("network", "rm", "blue", "green");
            // Docker's blue was the plugin's, so it went; green was useroverlay's, so it stays.
            string ls = h.Cli("network", "ls").EnsureSuccess().StdOut;
            Assert.DoesNotContain("blue", ls);
            Assert.Contains("green", ls);
            using var state = JsonDocument.Parse(File.ReadAllText(Path.Combine(h.Dir, "state", "docker", "plugin.json")));
            foreach (string part in (string[])["Pools", "Networks", "Endpoints"])
                Assert.Empty(state.RootElement.GetProperty(part).EnumerateObject());
        }
    }

    private static async Task Eventually(Func<bool> condition, string what, DockerHost[] hosts, int seconds = 30)
    {
        var deadline = Stopwatch.StartNew();
        while (!condition())
        {
            if (deadline.Elapsed > TimeSpan.FromSeconds(seconds))
                Assert.Fail($"{what}: not within {seconds} s\n{string.Join("\n", hosts.Select(h => h.Logs()))}");
            await Task.Delay(300);
        }
    }
}
