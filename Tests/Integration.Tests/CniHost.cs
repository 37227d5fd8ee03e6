using System.Text.Json;
using UserOverlay.Cli.Daemon;
using UserOverlay.Testing.Common;

namespace UserOverlay.Integration.Tests;

/// <summary>
/// A host for the CNI tests: a router (`useroverlay up`) in its own namespace, with a state directory of its own, and
/// a CNI bin directory holding useroverlay-cni — a symlink to the native binary (USEROVERLAY_BINARY, as users install
/// it: the binary dispatches on its name), else a wrapper that runs `dotnet useroverlay.dll --cni-plugin`.
/// </summary>
internal sealed class CniHost : IDisposable
{
    private readonly string _state;

    public RouterProcess Router { get; }

    /// <summary>The CNI bin directory (CNI_PATH's first entry; /usr/lib/cni follows it for host-local).</summary>
    public string BinDirectory { get; }

    /// <summary>The plugin as a runtime runs it.</summary>
    public string Plugin => Path.Combine(BinDirectory, "useroverlay-cni");

    public CniHost(TestNetwork net, int index, string peer)
    {
        _state = Directory.CreateTempSubdirectory("uo-cni-state-").FullName;
        Router = new RouterProcess(net, net.AddHost($"h{index}", $"192.0.2.{index}/24"), $"{net.Prefix}h{index}", $$"""
            underlay: { address: 192.0.2.{{index}} }
            peers: [{{peer}}]
            networks: [ { name: seed, vni: 4097, subnet: 198.18.0.0/24 } ]
            """)
        { ExtraArguments = ["--state-dir", _state] };
        BinDirectory = Directory.CreateTempSubdirectory("uo-cni-bin-").FullName;
        if (RouterProcess.Command is [var binary])
            File.CreateSymbolicLink(Plugin, binary);
        else
        {
            File.WriteAllText(Plugin, $"#!/bin/sh\nexec {RouterProcess.Command[0]} {RouterProcess.Command[1]} --cni-plugin\n");
            File.SetUnixFileMode(Plugin, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute | UnixFileMode.GroupRead | UnixFileMode.GroupExecute);
        }
    }

    /// <summary>A configuration for network <paramref name="network"/> on this host's router, with <paramref name="extra"/> JSON members.</summary>
    public string Conf(string version = "1.1.0", string network = "blue", string extra = "") =>
        $$"""{"cniVersion":"{{version}}","name":"uo","type":"useroverlay-cni","network":"{{network}}","host":"{{Router.Name}}"{{(extra.Length == 0 ? "" : "," + extra)}}}""";

    /// <summary>
    /// Runs the plugin as a runtime does: a clean environment with CNI_COMMAND, CNI_PATH and the container's variables
    /// (a null value leaves the variable out), the configuration on stdin.
    /// </summary>
    public CommandResult Cni(string command, string conf, string? containerId = null, string? netns = null, string ifname = "eth0", string? args = null)
    {
        var env = new List<string> { "PATH=/usr/sbin:/usr/bin:/sbin:/bin", $"CNI_COMMAND={command}", $"CNI_PATH={BinDirectory}:/usr/lib/cni" };
        foreach (string name in new[] { "HOME", "DOTNET_ROOT" })
            if (Environment.GetEnvironmentVariable(name) is { Length: > 0 } v) env.Add($"{name}={v}");
        if (containerId is not null) env.Add($"CNI_CONTAINERID={containerId}");
        if (netns is not null) env.Add($"CNI_NETNS={netns}");
        env.Add($"CNI_IFNAME={ifname}");
        if (args is not null) env.Add($"CNI_ARGS={args}");
        return Shell.Run("env", ["-i", .. env, Plugin], TimeSpan.FromSeconds(60), stdin: conf);
    }

    /// <summary>The plugin succeeded; its stdout parsed (null when it printed nothing).</summary>
    public static JsonElement? Succeeds(CommandResult r)
    {
        Assert.True(r.ExitCode == 0, $"{r.Command}: exit {r.ExitCode}\nstdout: {r.StdOut}\nstderr: {r.StdErr}");
        if (r.StdOut.Trim().Length == 0) return null;
        using var doc = JsonDocument.Parse(r.StdOut);
        return doc.RootElement.Clone();
    }

    /// <summary>The plugin failed with the CNI error object of <paramref name="code"/>, its msg containing <paramref name="contains"/>.</summary>
    public static JsonElement Fails(CommandResult r, int code, string contains)
    {
        Assert.True(r.ExitCode == 1, $"{r.Command}: exit {r.ExitCode}, expected 1\nstdout: {r.StdOut}\nstderr: {r.StdErr}");
        using var doc = JsonDocument.Parse(r.StdOut);
        var e = doc.RootElement.Clone();
        Assert.True(e.GetProperty("code").GetInt32() == code, $"code {e.GetProperty("code").GetInt32()}, expected {code}: {r.StdOut}");
        Assert.Contains(contains, e.GetProperty("msg").GetString());
        return e;
    }

    /// <summary>The router's endpoints on a network (by the control socket).</summary>
    public async Task<IReadOnlyList<EndpointView>> EndpointsAsync(string network = "blue")
    {
        using var c = new ControlClient(ControlApi.SocketPath(Router.Name));
        return ControlJson.Read(await c.GetAsync($"v1/networks/{network}/endpoints"), ControlJson.Default.IReadOnlyListEndpointView);
    }

    /// <summary>
    /// The CLI against this router (-H after <paramref name="args"/>' first word: `run`, `rm`, …), run from the test's
    /// namespaces: a workload's namespace mount then lives in a mount namespace that outlives the call.
    /// </summary>
    public CommandResult Client(params string[] args) =>
        Shell.Run(RouterProcess.Command[0], [.. RouterProcess.Command[1..], args[0], "-H", Router.Name, .. args[1..]], TimeSpan.FromSeconds(60));

    /// <summary>`useroverlay network create` on this router.</summary>
    public void CreateNetwork(string name, string subnet, int vni) =>
        Router.Cli("network", "create", "-H", Router.Name, "--subnet", subnet, "--vni", vni.ToString(System.Globalization.CultureInfo.InvariantCulture), name).EnsureSuccess();

    public void Dispose()
    {
        Router.Dispose();
        try { Directory.Delete(BinDirectory, recursive: true); } catch (IOException) { }
        try { Directory.Delete(_state, recursive: true); } catch (IOException) { }
    }
}
