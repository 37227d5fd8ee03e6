using UserOverlay.Testing.Common;

namespace UserOverlay.Integration.Tests;

/// <summary>
/// podman (Debian's 4.3, CNI backend) attaches a container to a UserOverlay network through useroverlay-cni on host A;
/// a plain `useroverlay run` workload is on the same network on host B; they ping each other. podman gets a
/// configuration of the test's own (containers.conf with its CNI directories, a conflist naming only this plugin), its
/// own storage, run root and tmp directory, and an image imported from busybox-static: no registry, no network of
/// podman's own. podman itself runs in the machine's namespace (the container's namespace is podman's, its TAP the
/// router's); each host's router runs in its own namespace.
/// </summary>
public sealed class PodmanCniTests
{
    [Fact]
    public async Task A_podman_container_and_a_workload_on_another_host_ping_each_other()
    {
        Requires.Root();
        string podman = Requires.Tool("podman", "podman");
        string busybox = Requires.Installed("/bin/busybox", "busybox-static");
        Requires.Tool("ping", "iputils-ping");
        using var net = new TestNetwork("pm");
        using var a = new CniHost(net, 1, "192.0.2.2");
        using var b = new CniHost(net, 2, "192.0.2.1");
        await a.Router.StartAsync();
        await b.Router.StartAsync();
        foreach (var h in new[] { a, b }) h.CreateNetwork("blue", "198.18.30.0/24", 6030); // static mode: the VNI is given

        string work = Directory.CreateTempSubdirectory("uo-podman-").FullName;
        string workload = $"{net.Prefix}wb";
        try
        {
            // The image: busybox-static and its applets, imported.
            string rootfs = Path.Combine(work, "rootfs");
            foreach (string d in new[] { "bin", "etc", "proc", "sys", "dev", "tmp" }) Directory.CreateDirectory(Path.Combine(rootfs, d));
            File.Copy(busybox, Path.Combine(rootfs, "bin", "busybox"));
            Shell.Run("chroot", [rootfs, "/bin/busybox", "--install", "-s", "/bin"]).EnsureSuccess();
            string net_d = Directory.CreateDirectory(Path.Combine(work, "net.d")).FullName;
            File.WriteAllText(Path.Combine(net_d, "uo.conflist"),
                $$"""{"cniVersion":"1.0.0","name":"uo-blue","plugins":[{"type":"useroverlay-cni","network":"blue","host":"{{a.Router.Name}}"}]}""");
            string conf = Path.Combine(work, "containers.conf");
            // This machine lacks CAP_SYS_RESOURCE: podman's default rlimits would fail; the default subnet is never used
            // (every run names the network) but is kept inside the test range all the same.
            File.WriteAllText(conf, $"""
                [containers]
                default_ulimits = ["nofile=20000:20000", "nproc=32768:32768"]
                [network]
                network_backend = "cni"
                cni_plugin_dirs = ["{a.BinDirectory}"]
                network_config_dir = "{net_d}"
                default_subnet = "198.18.255.0/24"
                [engine]
                events_logger = "file"
                cgroup_manager = "cgroupfs"
                """);
            string[] pm = ["env", $"CONTAINERS_CONF={conf}", podman, "--root", Path.Combine(work, "root"), "--runroot", Path.Combine(work, "runroot"),
                "--tmpdir", Path.Combine(work, "tmp"), "--storage-driver", "vfs"];
            CommandResult Podman(params string[] args) => Shell.Run(pm[0], [.. pm[1..], .. args], TimeSpan.FromSeconds(120));
            string tar = Path.Combine(work, "rootfs.tar");
            Shell.Run("tar", ["-C", rootfs, "-cf", tar, "."]).EnsureSuccess();
            Podman("import", tar, "localhost/uo-busybox").EnsureSuccess();

            // Host B: a detached workload at .12.
            b.Client("run", "-d", "--name", workload, "--network", "blue", "--ip", "198.18.30.12").EnsureSuccess();

            // Host A: a podman container on the CNI network pings B's workload…
            var ping = Podman("run", "--rm", "--network", "uo-blue", "--cap-add", "NET_RAW", "localhost/uo-busybox",
                "ping", "-c", "3", "-W", "2", "198.18.30.12");
            Assert.True(ping.ExitCode == 0, $"podman container → host B's workload: exit {ping.ExitCode}\n{ping.StdOut}\n{ping.StdErr}");
            Assert.Contains("3 packets received", ping.StdOut);
            Assert.DoesNotContain(await a.EndpointsAsync(), e => e.Name.StartsWith("cni-", StringComparison.Ordinal)); // --rm ran DEL

            // …and B's workload pings a long-running podman container.
            string id = Podman("run", "-d", "--network", "uo-blue", "localhost/uo-busybox", "sleep", "120").EnsureSuccess().StdOut.Trim();
            try
            {
                var ep = Assert.Single(await a.EndpointsAsync(), e => e.Name == "cni-" + id);
                Assert.Matches("^198\\.18\\.30\\.[0-9]+/24$", ep.Ipv4Address);
                string ip = ep.Ipv4Address.Split('/')[0];
                Assert.Contains(ip, Podman("exec", id, "ip", "-4", "addr", "show", "eth0").EnsureSuccess().StdOut);
                var back = b.Client("run", "--network", "blue", "--ip", "198.18.30.22", "--",
                    "ping", "-n", "-c", "3", "-i", "0.2", "-W", "2", ip);
                Assert.True(back.ExitCode == 0, $"host B → the podman container at {ip}: exit {back.ExitCode}\n{back.StdOut}\n{back.StdErr}");
            }
            finally
            {
                Podman("rm", "-f", "-t", "0", id);
            }
            Assert.DoesNotContain(await a.EndpointsAsync(), e => e.Name.StartsWith("cni-", StringComparison.Ordinal)); // rm ran DEL
        }
        finally
        {
            b.Client("rm", workload);
            if (File.Exists($"/run/netns/uo-{workload}")) Shell.Run("ip", ["netns", "del", $"uo-{workload}"]);
            Shell.Run("umount", ["-R", Path.Combine(work, "runroot")]); // podman unmounts at rm; a failed test may leave shm mounts
            try { Directory.Delete(work, recursive: true); } catch (IOException) { }
        }
    }
}
