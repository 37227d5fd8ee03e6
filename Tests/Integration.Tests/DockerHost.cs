using System.Diagnostics;
using System.Text;
using UserOverlay.Testing.Common;

namespace UserOverlay.Integration.Tests;

/// <summary>
/// One Docker host of the integration tests: its namespace, directory, dockerd and router (in one mount namespace),
/// stopped by PID. The router's configuration is <c>config</c> when given, else a gossip host joining 192.0.2.<c>peer</c>
/// with ESP-in-UDP encryption.
/// </summary>
internal sealed class DockerHost(TestNetwork net, int index, string root, string gossipKey, string dockerd, string? config = null) : IDisposable
{
    /// <summary>Debian's client, the daemon's version (a newer one may be on PATH).</summary>
    public const string DockerCli = "/usr/bin/docker";

    /// <summary>dockerd's path, once root, the client, busybox-static and util-linux are there.</summary>
    public static string RequireDocker()
    {
        Requires.Root();
        string dockerd = Requires.Tool("dockerd", "docker.io");
        if (!File.Exists(DockerCli)) Requires.Tool("docker-debian-client-at-/usr/bin/docker", "docker.io");
        if (!File.Exists("/bin/busybox")) Requires.Tool("busybox-static-at-/bin/busybox", "busybox-static");
        Requires.Tool("unshare", "util-linux");
        Requires.Tool("nsenter", "util-linux");
        return dockerd;
    }

    public string Namespace { get; } = net.AddHost($"h{index}", $"192.0.2.{index}/24");
    public string Dir { get; } = Path.Combine(root, $"h{index}");
    public string Name { get; } = $"{net.Prefix}h{index}";
    public string Socket => Path.Combine(Dir, "docker.sock");
    public string PluginSocket => Path.Combine(Dir, "plugins", "useroverlay.sock");
    private readonly StringBuilder _log = new();
    private Process? _restarted;

    private int? Pid(string file) => File.Exists(Path.Combine(Dir, file)) && int.TryParse(File.ReadAllText(Path.Combine(Dir, file)).Trim(), out int p) ? p : null;

    public string RouterArguments => $"up --config {Dir}/host.yaml --name {Name} --state-dir {Dir}/state --docker-plugin=/run/docker/plugins/useroverlay.sock";

    public async Task StartAsync(int peer)
    {
        foreach (string d in (string[])["plugins", "data", "exec", "state", "esp"]) Directory.CreateDirectory(Path.Combine(Dir, d));
        File.WriteAllText(Path.Combine(Dir, "daemon.json"), $$"""
            {"bridge": "none", "iptables": false, "ip6tables": false, "ip-forward": false, "ip-masq": false,
             "default-address-pools": [{"base": "198.19.{{index}}.0/24", "size": 26}]}
            """);
        File.WriteAllText(Path.Combine(Dir, "host.yaml"), config ?? $$"""
            underlay: { address: 192.0.2.{{index}} }
            gossip: { bind: 192.0.2.{{index}}, join: [192.0.2.{{peer}}], key: {{gossipKey}}, profile: local }
            encryption: { esp: udp, state_dir: {{Dir}}/esp }
            """);
        // `ip netns exec` remounted /sys (the cgroup mounts with it): mount them again, as the test's own mount namespace has them.
        var script = new StringBuilder("set -e\n");
        foreach (string line in File.ReadAllLines("/proc/self/mounts"))
        {
            var f = line.Split(' ');
            if (!f[1].StartsWith("/sys/fs/cgroup", StringComparison.Ordinal)) continue;
            script.Append(f[2] == "tmpfs" ? $"mount -t tmpfs -o {f[3]} cgroup {f[1]}\n" : $"mkdir -p {f[1]}\nmount -t {f[2]} -o {f[3]} {f[2]} {f[1]}\n");
        }
        // /run/docker/plugins is this host's plugins directory. The machine's /run stays untouched (no /run/docker made
        // there: a router elsewhere would take it for Docker's): a tmpfs over /run in this mount namespace, with the
        // machine's /run/netns and /run/useroverlay (the router's control socket, for the test's CLI) bound back.
        script.Append($"mkdir -p /run/useroverlay {Dir}/run\nmount --rbind /run {Dir}/run\nmount -t tmpfs -o mode=755 run /run\n");
        script.Append($"mkdir -p /run/netns /run/useroverlay /run/docker/plugins\nmount --rbind {Dir}/run/netns /run/netns\nmount --rbind {Dir}/run/useroverlay /run/useroverlay\n");
        script.Append($"mount --bind {Dir}/plugins /run/docker/plugins\n");
        script.Append($"{string.Join(' ', RouterProcess.Command)} {RouterArguments} >> {Dir}/router.log 2>&1 &\necho $! > {Dir}/router.pid\n");
        script.Append($"{dockerd} --config-file {Dir}/daemon.json --data-root {Dir}/data --exec-root {Dir}/exec --pidfile {Dir}/docker.pid -H unix://{Socket} > {Dir}/dockerd.log 2>&1 &\necho $! > {Dir}/dockerd.pid\nwait\n");
        File.WriteAllText(Path.Combine(Dir, "run.sh"), script.ToString());
        net.Start(Namespace, "unshare", ["-m", "--propagation", "slave", "/bin/sh", Path.Combine(Dir, "run.sh")], l => { lock (_log) _log.AppendLine(l); });
        var deadline = Stopwatch.StartNew();
        while (!(File.Exists(PluginSocket) && Shell.Run(DockerCli, ["-H", "unix://" + Socket, "version"], TimeSpan.FromSeconds(10)).ExitCode == 0))
        {
            if (deadline.Elapsed > TimeSpan.FromSeconds(90)) Assert.Fail($"host {index}: dockerd or the router did not come up in 90 s\n{Logs()}");
            await Task.Delay(200);
        }
    }

    public string Logs()
    {
        string Read(string f) => File.Exists(Path.Combine(Dir, f)) ? File.ReadAllText(Path.Combine(Dir, f)) : "";
        string tail(string s) => s.Length > 6000 ? s[^6000..] : s;
        lock (_log) return $"--- wrapper\n{_log}\n--- router\n{tail(Read("router.log"))}\n--- dockerd\n{tail(Read("dockerd.log"))}";
    }

    public CommandResult Docker(params string[] args) => Shell.Run(DockerCli, new[] { "-H", "unix://" + Socket }.Concat(args), TimeSpan.FromSeconds(90));

    public string Must(params string[] args)
    {
        var r = Docker(args);
        Assert.True(r.ExitCode == 0, $"docker {string.Join(' ', args)} on host {index} exited {r.ExitCode}: {r.StdErr}\n{Logs()}");
        return r.StdOut.Trim();
    }

    /// <summary>The useroverlay CLI against this host's router.</summary>
    public CommandResult Cli(params string[] args) =>
        Shell.Run(RouterProcess.Command[0], RouterProcess.Command.Skip(1).Concat(args[..(args[0] == "network" ? 2 : 1)]).Concat(["-H", Name]).Concat(args[(args[0] == "network" ? 2 : 1)..]), TimeSpan.FromSeconds(60));

    /// <summary>Stops the router (SIGTERM, by PID) and starts it again in the same mount and network namespace as dockerd.</summary>
    public async Task RestartRouterAsync()
    {
        int router = Pid("router.pid") ?? throw new InvalidOperationException("no router pid");
        await StopAsync(router);
        int dockerd = Pid("dockerd.pid") ?? throw new InvalidOperationException("no dockerd pid");
        var psi = new ProcessStartInfo("nsenter") { UseShellExecute = false, RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (string a in new[] { $"--mount=/proc/{dockerd}/ns/mnt", $"--net=/proc/{dockerd}/ns/net", "--" }.Concat(RouterProcess.Command).Concat(RouterArguments.Split(' ')))
            psi.ArgumentList.Add(a);
        _restarted = Process.Start(psi)!;
        _restarted.OutputDataReceived += (_, e) => { if (e.Data is not null) lock (_log) _log.AppendLine(e.Data); };
        _restarted.ErrorDataReceived += (_, e) => { if (e.Data is not null) lock (_log) _log.AppendLine(e.Data); };
        _restarted.BeginOutputReadLine();
        _restarted.BeginErrorReadLine();
        File.WriteAllText(Path.Combine(Dir, "router.pid"), _restarted.Id.ToString(System.Globalization.CultureInfo.InvariantCulture));
        var deadline = Stopwatch.StartNew();
        while (Cli("status").ExitCode != 0 || !File.Exists(PluginSocket))
        {
            if (_restarted.HasExited || deadline.Elapsed > TimeSpan.FromSeconds(60)) Assert.Fail($"host {index}: the restarted router did not come up\n{Logs()}");
            await Task.Delay(200);
        }
    }

    private static async Task StopAsync(int pid)
    {
        Shell.Run("kill", ["-TERM", pid.ToString(System.Globalization.CultureInfo.InvariantCulture)]);
        for (int i = 0; i < 150 && Directory.Exists($"/proc/{pid}"); i++) await Task.Delay(100);
    }

    /// <summary>dockerd (which stops its containers and its containerd), then the router: each by its PID.</summary>
    public void Dispose()
    {
        foreach (string file in (string[])["dockerd.pid", "router.pid"])
        {
            if (Pid(file) is not int pid || !Directory.Exists($"/proc/{pid}")) continue;
            Shell.Run("kill", ["-TERM", pid.ToString(System.Globalization.CultureInfo.InvariantCulture)]);
            for (int i = 0; i < 200 && Directory.Exists($"/proc/{pid}"); i++) Thread.Sleep(100);
            if (Directory.Exists($"/proc/{pid}")) Shell.Run("kill", ["-KILL", pid.ToString(System.Globalization.CultureInfo.InvariantCulture)]);
        }
        if (_restarted is { } p)
        {
            try { if (!p.HasExited) p.Kill(); p.WaitForExit(5000); } catch (InvalidOperationException) { }
            p.Dispose();
        }
    }
}
