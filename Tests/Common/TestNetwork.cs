using System.Diagnostics;
using System.Security.Cryptography;

namespace UserOverlay.Testing.Common;

/// <summary>
/// Test hosts built out of network namespaces: a hub namespace holding a bridge (the underlay,
/// 192.0.2.0/24), hosts attached to it by veth pairs, and plain namespaces for workloads.
/// Every namespace gets a unique name with this instance's prefix; Dispose deletes exactly the
/// namespaces it created and kills exactly the processes it started (by PID).
/// Addresses: only 192.0.2.0/24 (underlay) and 198.18.0.0/15 (overlay), as the project's safety rules demand.
/// </summary>
public sealed class TestNetwork : IDisposable
{
    private readonly List<string> _namespaces = [];
    private readonly List<Process> _processes = [];
    private int _veth;

    /// <summary>Unique prefix of every namespace of this instance, e.g. "uo3fa2-".</summary>
    public string Prefix { get; }

    /// <summary>The hub namespace holding bridge br0, or null before the first <see cref="AddHost"/>.</summary>
    public string? Hub { get; private set; }

    public TestNetwork(string tag = "t")
    {
        Requires.Root();
        string rnd = Convert.ToHexString(RandomNumberGenerator.GetBytes(3)).ToLowerInvariant();
        Prefix = $"uo{tag}{rnd}-";
    }

    /// <summary>Creates a namespace named Prefix+name with loopback up; IPv6 disabled unless asked.</summary>
    public string AddNamespace(string name, bool ipv6 = false)
    {
        string ns = Prefix + name;
        Shell.Must($"ip netns add {ns}");
        _namespaces.Add(ns);
        Shell.Must($"ip -n {ns} link set lo up");
        if (!ipv6)
        {
            Exec(ns, "sysctl -qw net.ipv6.conf.all.disable_ipv6=1");
            Exec(ns, "sysctl -qw net.ipv6.conf.default.disable_ipv6=1");
        }
        return ns;
    }

    private void EnsureHub()
    {
        if (Hub is not null) return;
        Hub = AddNamespace("hub");
        Shell.Must($"ip -n {Hub} link add br0 type bridge");
        Shell.Must($"ip -n {Hub} link set br0 type bridge stp_state 0 forward_delay 0");
        Shell.Must($"ip -n {Hub} link set br0 up");
    }

    /// <summary>Creates a host namespace attached to the hub bridge with eth0 = <paramref name="underlayCidr"/> (e.g. 192.0.2.1/24).</summary>
    public string AddHost(string name, string underlayCidr, int mtu = 1500)
    {
        if (!underlayCidr.StartsWith("192.0.2.", StringComparison.Ordinal))
            throw new ArgumentException("underlay addresses must be in 192.0.2.0/24", nameof(underlayCidr));
        EnsureHub();
        string ns = AddNamespace(name);
        string hv = $"{Prefix[..Math.Min(Prefix.Length, 9)]}{_veth++}".Replace("-", "v");
        Shell.Must($"ip link add {hv} mtu {mtu} type veth peer name eth0 mtu {mtu} netns {ns}");
        Shell.Must($"ip link set {hv} netns {Hub}");
        Shell.Must($"ip -n {Hub} link set {hv} master br0 up");
        Shell.Must($"ip -n {ns} addr add {underlayCidr} dev eth0");
        Shell.Must($"ip -n {ns} link set eth0 up");
        return ns;
    }

    /// <summary>Sets a host's underlay link (its veth end in the host) up or down, to simulate partitions.</summary>
    public void SetHostLink(string hostNs, bool up) => Shell.Must($"ip -n {hostNs} link set eth0 {(up ? "up" : "down")}");

    /// <summary>Runs a command inside a namespace and returns its result.</summary>
    public static CommandResult Exec(string ns, string commandLine, TimeSpan? timeout = null)
    {
        string[] parts = commandLine.Split(' ', StringSplitOptions.RemoveEmptyEntries);
        return Shell.Run("ip", new[] { "netns", "exec", ns }.Concat(parts), timeout);
    }

    /// <summary>Starts a long-running process inside a namespace; it is killed (by PID) on Dispose.</summary>
    public Process Start(string ns, string file, IEnumerable<string> args, Action<string>? onOutput = null, string? workingDirectory = null)
    {
        var psi = new ProcessStartInfo("ip") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        if (workingDirectory is not null) psi.WorkingDirectory = workingDirectory;
        foreach (string a in new[] { "netns", "exec", ns, file }.Concat(args)) psi.ArgumentList.Add(a);
        var p = Process.Start(psi) ?? throw new InvalidOperationException("could not start " + file);
        p.OutputDataReceived += (_, e) => { if (e.Data is not null) onOutput?.Invoke(e.Data); };
        p.ErrorDataReceived += (_, e) => { if (e.Data is not null) onOutput?.Invoke(e.Data); };
        p.BeginOutputReadLine();
        p.BeginErrorReadLine();
        lock (_processes) _processes.Add(p);
        return p;
    }

    /// <summary>Pings from a namespace; true when at least <paramref name="minReplies"/> replies came back.</summary>
    public static bool Ping(string ns, string address, int count = 3, double interval = 0.2, int waitSeconds = 2, int minReplies = -1)
    {
        var r = Exec(ns, $"ping -n -c {count} -i {interval.ToString(System.Globalization.CultureInfo.InvariantCulture)} -W {waitSeconds} {address}", TimeSpan.FromSeconds(count * (interval + waitSeconds) + 10));
        if (minReplies < 0) return r.ExitCode == 0;
        var m = System.Text.RegularExpressions.Regex.Match(r.StdOut, @"(\d+) received");
        return m.Success && int.Parse(m.Groups[1].Value) >= minReplies;
    }

    public void Dispose()
    {
        lock (_processes)
        {
            foreach (var p in _processes)
            {
                try { if (!p.HasExited) { p.Kill(entireProcessTree: true); p.WaitForExit(5000); } } catch (InvalidOperationException) { }
                p.Dispose();
            }
            _processes.Clear();
        }
        for (int i = _namespaces.Count - 1; i >= 0; i--)
            Shell.Run("ip", ["netns", "del", _namespaces[i]]);
        _namespaces.Clear();
    }
}
