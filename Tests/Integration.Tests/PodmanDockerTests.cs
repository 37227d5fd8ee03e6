using System.Diagnostics;
using UserOverlay.Cli.Daemon;
using UserOverlay.Testing.Common;

namespace UserOverlay.Integration.Tests;

/// <summary>
/// podman and Docker on one UserOverlay network: host A runs a router and podman (Debian's 4.3, CNI backend, a
/// containers.conf and conflist of the test's own naming useroverlay-cni on network blue, its own storage and run
/// root); host B runs a router and its own dockerd with the plugin (<see cref="DockerHost"/>). blue is made by
/// `useroverlay network create` on both routers (the same subnet and VNI, static peers) and bound by
/// `docker network create -d useroverlay` on B. The podman container pings the Docker container and back; after rm
/// neither router has an endpoint on blue and neither host namespace has a link it lacked before.
/// </summary>
public sealed class PodmanDockerTests
{
    private const string Image = "uo-busybox";
    private const string Subnet = "198.18.34.0/24";
    private const int Vni = 6034;

    [Fact]
    public async Task A_podman_container_on_cni_and_a_docker_container_on_another_host_ping_each_other_and_leave_nothing()
    {
        string dockerd = DockerHost.RequireDocker();
        string podman = Requires.Tool("podman", "podman");
        Requires.Tool("ping", "iputils-ping");
        string root = Directory.CreateTempSubdirectory("uopd-").FullName;
        string? id = null;
        string[] pm = ["env", $"CONTAINERS_CONF={root}/containers.conf", podman, "--root", $"{root}/podman/root", "--runroot", $"{root}/podman/runroot",
            "--tmpdir", $"{root}/podman/tmp", "--storage-driver", "vfs"];
        CommandResult Podman(params string[] args) => Shell.Run(pm[0], [.. pm[1..], .. args], TimeSpan.FromSeconds(120));
        try
        {
            using var net = new TestNetwork("pd");
            using var a = new CniHost(net, 1, "192.0.2.2");
            using var b = new DockerHost(net, 2, root, "", dockerd, """
                underlay: { address: 192.0.2.2 }
                peers: [192.0.2.1]
                networks: [ { name: seed, vni: 4097, subnet: 198.18.0.0/24 } ]
                """);
            await Task.WhenAll(a.Router.StartAsync(), b.StartAsync(1));
            string Logs() => $"--- host A's router\n{a.Router.Output}\n{b.Logs()}";
            async Task Eventually(Func<bool> condition, string what)
            {
                var deadline = Stopwatch.StartNew();
                while (!condition())
                {
                    if (deadline.Elapsed > TimeSpan.FromSeconds(30)) Assert.Fail($"{what}: not within 30 s\n{Logs()}");
                    await Task.Delay(300);
                }
            }

            // blue on both routers, bound by Docker on B (by its subnet; -o name checks it is blue).
            a.CreateNetwork("blue", Subnet, Vni);
            b.Cli("network", "create", "--subnet", Subnet, "--vni", Vni.ToString(System.Globalization.CultureInfo.InvariantCulture), "blue").EnsureSuccess();
            b.Must("network", "create", "-d", "useroverlay", "--ipam-driver", "useroverlay", "--subnet", Subnet, "-o", "name=blue", "blue");

            // The image: busybox-static and its applets, imported by both runtimes (no registry).
            string rootfs = Path.Combine(root, "rootfs");
            foreach (string d in new[] { "bin", "etc", "proc", "sys", "dev", "tmp" }) Directory.CreateDirectory(Path.Combine(rootfs, d));
            File.Copy("/bin/busybox", Path.Combine(rootfs, "bin", "busybox"));
            Shell.Run("chroot", [rootfs, "/bin/busybox", "--install", "-s", "/bin"]).EnsureSuccess();
            string tar = Path.Combine(root, "rootfs.tar");
            Shell.Run("tar", ["-C", rootfs, "-cf", tar, "."]).EnsureSuccess();
            Shell.Run("sh", ["-c", $"{DockerHost.DockerCli} -H unix://{b.Socket} import - {Image} < {tar}"], TimeSpan.FromSeconds(60)).EnsureSuccess();

            // podman's configuration: only this conflist, the CNI bin directory with useroverlay-cni; rlimits this machine
            // allows; a default subnet inside the test range (never used: the run names the network).
            string netD = Directory.CreateDirectory(Path.Combine(root, "net.d")).FullName;
            File.WriteAllText(Path.Combine(netD, "uo.conflist"),
                $$"""{"cniVersion":"1.0.0","name":"uo-blue","plugins":[{"type":"useroverlay-cni","network":"blue","host":"{{a.Router.Name}}"}]}""");
            File.WriteAllText(Path.Combine(root, "containers.conf"), $"""
                [containers]
                default_ulimits = ["nofile=20000:20000", "nproc=32768:32768"]
                [network]
                network_backend = "cni"
                cni_plugin_dirs = ["{a.BinDirectory}"]
                network_config_dir = "{netD}"
                default_subnet = "198.18.255.0/24"
                [engine]
                events_logger = "file"
                cgroup_manager = "cgroupfs"
                """);
            Podman("import", tar, "localhost/" + Image).EnsureSuccess();

            string LinksOf(string ns) => string.Join('\n', Shell.Run("ip", ["-n", ns, "-o", "link"]).EnsureSuccess().StdOut
                .Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(l => l.Split(':')[1].Trim().Split('@')[0]).Order(StringComparer.Ordinal));
            string linksA = LinksOf(a.Router.HostNamespace), linksB = LinksOf(b.Namespace);
            Assert.Contains("eth0", linksA); // the parse finds the links

            // B: a Docker container at .12; A: a podman container, its address from UserOverlay's IPAM.
            b.Must("run", "-d", "--name", "c2", "--network", "blue", "--ip", "198.18.34.12", Image, "/bin/sleep", "600");
            Assert.Contains("198.18.34.12/24", b.Must("exec", "c2", "ip", "-4", "-o", "addr", "show", "eth0"));
            id = Podman("run", "-d", "--network", "uo-blue", "--cap-add", "NET_RAW", "localhost/" + Image, "sleep", "600").EnsureSuccess().StdOut.Trim();
            var ep = Assert.Single(await a.EndpointsAsync(), e => e.Name == "cni-" + id);
            Assert.Matches("^198\\.18\\.34\\.[0-9]+/24$", ep.Ipv4Address);
            string ip = ep.Ipv4Address.Split('/')[0];
            Assert.Contains(ep.Ipv4Address, Podman("exec", id, "ip", "-4", "-o", "addr", "show", "eth0").EnsureSuccess().StdOut);

            // podman → Docker, then Docker → podman.
            await Eventually(() => Podman("exec", id, "ping", "-c", "1", "-W", "1", "198.18.34.12").ExitCode == 0, "the podman container pings the Docker container");
            var ping = Podman("exec", id, "ping", "-c", "3", "-W", "2", "198.18.34.12");
            Assert.True(ping.ExitCode == 0, $"podman → Docker: exit {ping.ExitCode}\n{ping.StdOut}\n{ping.StdErr}\n{Logs()}");
            Assert.Contains("3 packets received", ping.StdOut);
            Assert.Contains("3 packets received", b.Must("exec", "c2", "ping", "-c", "3", "-W", "2", ip));

            // Clean up: each runtime removes its container, Docker its network; nothing is left on either host.
            Podman("rm", "-f", "-t", "0", id).EnsureSuccess();
            id = null;
            b.Must("stop", "-t", "1", "c2");
            b.Must("rm", "c2");
            b.Must("network", "rm", "blue");
            Assert.Empty(await a.EndpointsAsync());
            using (var c = new ControlClient(ControlApi.SocketPath(b.Name)))
                Assert.Empty(ControlJson.Read(await c.GetAsync("v1/networks/blue/endpoints", TestContext.Current.CancellationToken), ControlJson.Default.IReadOnlyListEndpointView));
            Assert.Contains("blue", b.Cli("network", "ls").EnsureSuccess().StdOut); // useroverlay's network stays; Docker only bound it
            await Eventually(() => LinksOf(a.Router.HostNamespace) == linksA && LinksOf(b.Namespace) == linksB, "no TAP or other link left in either host's namespace");
        }
        finally
        {
            if (id is not null) Podman("rm", "-f", "-t", "0", id);
            Shell.Run("umount", ["-R", $"{root}/podman/runroot"]); // podman unmounts at rm; a failed test may leave shm mounts
            try { Directory.Delete(root, recursive: true); } catch (IOException) { }
        }
    }
}
