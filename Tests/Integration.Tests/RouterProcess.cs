using System.Diagnostics;
using System.Text;
using UserOverlay.Cli.Daemon;
using UserOverlay.Router;
using UserOverlay.Testing.Common;

namespace UserOverlay.Integration.Tests;

/// <summary>
/// A `useroverlay up` process running inside a host namespace, as a user would run it; the test
/// talks to it over its control socket. Killed by PID on Dispose (never by name).
/// </summary>
public sealed class RouterProcess : IDisposable
{
    private readonly TestNetwork _net;
    private readonly StringBuilder _output = new();
    private Process? _process;

    public string Name { get; }
    public string HostNamespace { get; }
    public string ConfigPath { get; }

    public RouterProcess(TestNetwork net, string hostNamespace, string name, string configYaml)
    {
        _net = net;
        HostNamespace = hostNamespace;
        Name = name;
        ConfigPath = Path.Combine(Path.GetTempPath(), $"{name}.yaml");
        File.WriteAllText(ConfigPath, configYaml);
    }

    /// <summary>The directory the router starts in (the test's own when null).</summary>
    public string? WorkingDirectory { get; init; }

    /// <summary>Environment variables set for the router only (e.g. NOTIFY_SOCKET), through env(1) so the PID stays the router's.</summary>
    public IReadOnlyDictionary<string, string> EnvironmentVariables { get; init; } = new Dictionary<string, string>();

    /// <summary>A program that runs the router and execs it (so the PID stays the router's), e.g. ["prlimit", "--nofile=1024:4096"].</summary>
    public IReadOnlyList<string> Wrapper { get; init; } = [];

    /// <summary>Start `up` without --config (ExtraArguments then give --underlay).</summary>
    public bool WithoutConfig { get; init; }

    /// <summary>More arguments of `up` (e.g. --state-dir DIR).</summary>
    public IReadOnlyList<string> ExtraArguments { get; init; } = [];

    /// <summary>Output of the process so far (for failure messages).</summary>
    public string Output { get { lock (_output) return _output.ToString(); } }

    public bool IsRunning => _process is { HasExited: false };

    /// <summary>The dotnet host that runs useroverlay.dll.</summary>
    public static string DotnetHost =>
        Environment.GetEnvironmentVariable("DOTNET_HOST_PATH") is { Length: > 0 } p && File.Exists(p) ? p
        : Requires.Which("dotnet") ?? "/usr/share/dotnet/dotnet";

    /// <summary>useroverlay.dll next to the tests (the Cli project is referenced, so the build copies it).</summary>
    public static string CliDll => Path.Combine(AppContext.BaseDirectory, "useroverlay.dll");

    /// <summary>
    /// The command that runs useroverlay: the native binary named by USEROVERLAY_BINARY (`.ci/run` publishes the
    /// ahead-of-time compiled one, as users install it, and runs these tests against it), else `dotnet useroverlay.dll`.
    /// </summary>
    public static string[] Command =>
        Environment.GetEnvironmentVariable("USEROVERLAY_BINARY") is not { Length: > 0 } binary ? [DotnetHost, CliDll]
        : File.Exists(binary) ? [binary]
        : throw new InvalidOperationException($"USEROVERLAY_BINARY is {binary}, which does not exist (publish it with `dotnet publish Cli -c Release -r linux-x64`, or unset it to run useroverlay.dll)");

    /// <summary>Runs the CLI once (e.g. `status --json`) in the host namespace and returns its result.</summary>
    public CommandResult Cli(params string[] args) =>
        Shell.Run("ip", new[] { "netns", "exec", HostNamespace }.Concat(Command).Concat(args), TimeSpan.FromSeconds(60));

    /// <summary>Starts the router and waits until its control socket answers.</summary>
    public async Task StartAsync(TimeSpan? timeout = null)
    {
        var process = Launch();
        var deadline = Stopwatch.StartNew();
        while (true)
        {
            if (process.HasExited)
                Assert.Fail($"router {Name} exited with {process.ExitCode} during start:\n{Output}");
            if (File.Exists(ControlApi.SocketPath(Name)))
            {
                try
                {
                    using var c = new ControlClient(ControlApi.SocketPath(Name));
                    await c.GetAsync("_ping");
                    return;
                }
                catch (RouterException) { }
            }
            if (deadline.Elapsed > (timeout ?? TimeSpan.FromSeconds(30)))
                Assert.Fail($"router {Name} did not open its control socket in time:\n{Output}");
            await Task.Delay(50);
        }
    }

    /// <summary>Starts `useroverlay up` and returns at once (<see cref="StartAsync"/> also waits for the control socket).</summary>
    public Process Launch()
    {
        lock (_output) _output.Clear();
        string[] env = [.. EnvironmentVariables.Select(kv => $"{kv.Key}={kv.Value}")];
        string[] command = env.Length == 0 ? [.. Wrapper, .. Command] : [.. Wrapper, "/usr/bin/env", .. env, .. Command];
        _process = _net.Start(HostNamespace, command[0], [.. command[1..], "up", .. (WithoutConfig ? Array.Empty<string>() : ["--config", ConfigPath]), "--name", Name, "--log-level", "Warning", .. ExtraArguments],
            line => { lock (_output) _output.AppendLine(line); }, WorkingDirectory);
        return _process;
    }

    /// <summary>The router's status over the control socket.</summary>
    public async Task<RouterStatus> StatusAsync()
    {
        using var c = new ControlClient(ControlApi.SocketPath(Name));
        return ControlJson.Read(await c.GetAsync("v1/status"), ControlJson.Default.RouterStatus);
    }

    /// <summary>The process id of the running router (the `ip netns exec` process execs it, so this is the router itself).</summary>
    public int Pid => _process?.Id ?? throw new InvalidOperationException($"router {Name} was never started");

    /// <summary>SIGKILL by PID, as a crash: nothing is cleaned up (the control socket stays, stale); waits for the exit.</summary>
    public async Task KillAsync()
    {
        if (_process is null || _process.HasExited) return;
        Shell.Run("kill", ["-KILL", _process.Id.ToString(System.Globalization.CultureInfo.InvariantCulture)]);
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(15));
        await _process.WaitForExitAsync(cts.Token);
    }

    /// <summary>Sends SIGTERM and waits for a clean exit; returns the exit code.</summary>
    public async Task<int> StopAsync()
    {
        if (_process is null || _process.HasExited) return _process?.ExitCode ?? 0;
        Shell.Run("kill", ["-TERM", _process.Id.ToString(System.Globalization.CultureInfo.InvariantCulture)]);
        return await WaitForExitAsync();
    }

    /// <summary>Waits (at most 15 s) for the router to exit; returns the exit code.</summary>
    public async Task<int> WaitForExitAsync()
    {
        if (_process is null) throw new InvalidOperationException($"router {Name} was never started");
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(15));
        await _process.WaitForExitAsync(cts.Token);
        return _process.ExitCode;
    }

    public void Dispose()
    {
        if (_process is { HasExited: false })
        {
            // A clean stop first (removes the control socket); SIGKILL only if it does not exit.
            Shell.Run("kill", ["-TERM", _process.Id.ToString(System.Globalization.CultureInfo.InvariantCulture)]);
            if (!_process.WaitForExit(10_000))
            {
                try { _process.Kill(entireProcessTree: true); _process.WaitForExit(5000); } catch (InvalidOperationException) { }
            }
        }
        try { File.Delete(ConfigPath); } catch (IOException) { }
        // A router that was killed (KillAsync, or the SIGKILL above) leaves its socket: remove it unless someone listens.
        string socket = ControlApi.SocketPath(Name);
        if (_process is not null && File.Exists(socket) && !ControlClient.IsLive(socket))
            try { File.Delete(socket); } catch (IOException) { }
    }
}
