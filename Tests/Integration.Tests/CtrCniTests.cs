using UserOverlay.Testing.Common;

namespace UserOverlay.Integration.Tests;

/// <summary>
/// containerd's `ctr run --cni` (Debian's 1.6) attaches a container through useroverlay-cni on host A and pings a
/// `useroverlay run` workload on host B. ctr reads its CNI configuration from /etc/cni/net.d and /opt/cni/bin only, so
/// the test runs containerd and ctr in a private mount namespace where a tmpfs covers /opt and the test's own
/// directories are bind-mounted there and over /etc/cni/net.d; containerd gets its own root, state, socket and a
/// configuration with its CRI plugin off. The container's rootfs is busybox-static (`--rootfs`): no image, no registry.
/// </summary>
public sealed class CtrCniTests
{
    [Fact]
    public async Task A_ctr_container_pings_a_workload_on_another_host()
    {
        Requires.Root();
        Requires.Tool("ctr", "containerd");
        Requires.Tool("containerd", "containerd");
        Requires.Tool("runc", "runc");
        Requires.Tool("unshare", "util-linux");
        string busybox = Requires.Installed("/bin/busybox", "busybox-static");
        Requires.Tool("ping", "iputils-ping");
        if (!Directory.Exists("/etc/cni/net.d")) Directory.CreateDirectory("/etc/cni/net.d"); // a mount point inside the private namespace
        using var net = new TestNetwork("ct");
        using var a = new CniHost(net, 1, "192.0.2.2");
        using var b = new CniHost(net, 2, "192.0.2.1");
        await a.Router.StartAsync();
        await b.Router.StartAsync();
        foreach (var h in new[] { a, b }) h.CreateNetwork("blue", "198.18.31.0/24", 6031);

        string work = Directory.CreateTempSubdirectory("uo-ctr-").FullName;
        string workload = $"{net.Prefix}wb";
        try
        {
            string rootfs = Path.Combine(work, "rootfs");
            foreach (string d in new[] { "bin", "etc", "proc", "sys", "dev", "tmp" }) Directory.CreateDirectory(Path.Combine(rootfs, d));
            File.Copy(busybox, Path.Combine(rootfs, "bin", "busybox"));
            Shell.Run("chroot", [rootfs, "/bin/busybox", "--install", "-s", "/bin"]).EnsureSuccess();
            string netd = Directory.CreateDirectory(Path.Combine(work, "net.d")).FullName;
            File.WriteAllText(Path.Combine(netd, "10-uo.conflist"),
                $$"""{"cniVersion":"1.0.0","name":"uo-blue","plugins":[{"type":"useroverlay-cni","network":"blue","host":"{{a.Router.Name}}"}]}""");
            File.WriteAllText(Path.Combine(work, "config.toml"), "version = 2\ndisabled_plugins = [\"io.containerd.grpc.v1.cri\"]\n");
            b.Client("run", "-d", "--name", workload, "--network", "blue", "--ip", "198.18.31.12").EnsureSuccess();

            string id = $"{net.Prefix}c1";
            string script = $"""
                set -e
                mount -t tmpfs tmpfs /opt
                mkdir -p /opt/cni/bin
                mount --bind {a.BinDirectory} /opt/cni/bin
                mount --bind {netd} /etc/cni/net.d
                containerd --config {work}/config.toml --root {work}/root --state {work}/state --address {work}/ctrd.sock > {work}/containerd.log 2>&1 &
                pid=$!
                trap 'kill $pid; wait $pid' EXIT
                for i in $(seq 100); do [ -S {work}/ctrd.sock ] && break; sleep 0.1; done
                ctr -a {work}/ctrd.sock run --rm --cni --rootfs {rootfs} {id} /bin/ping -c 3 -W 2 198.18.31.12
                """;
            var r = Shell.Run("unshare", ["-m", "--propagation", "private", "bash", "-c", script], TimeSpan.FromSeconds(120));
            Assert.True(r.ExitCode == 0, $"ctr container → host B's workload: exit {r.ExitCode}\n{r.StdOut}\n{r.StdErr}\n{(File.Exists($"{work}/containerd.log") ? File.ReadAllText($"{work}/containerd.log") : "")}");
            Assert.Contains("3 packets received", r.StdOut);
            Assert.DoesNotContain(await a.EndpointsAsync(), e => e.Name.StartsWith("cni-", StringComparison.Ordinal)); // --rm ran DEL
        }
        finally
        {
            b.Client("rm", workload);
            if (File.Exists($"/run/netns/uo-{workload}")) Shell.Run("ip", ["netns", "del", $"uo-{workload}"]);
            try { Directory.Delete(work, recursive: true); } catch (IOException) { }
        }
    }
}
