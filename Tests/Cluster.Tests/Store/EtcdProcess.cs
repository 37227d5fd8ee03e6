using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Text.Json;
using UserOverlay.Testing.Common;

namespace UserOverlay.Cluster.Tests.Store;

/// <summary>
/// A real etcd member (Debian's <c>etcd-server</c>) run by a test: loopback ports, its own data directory, stopped
/// by its PID. <see cref="StartClusterAsync"/> starts one member or several that form one cluster.
/// </summary>
internal sealed class EtcdProcess : IAsyncDisposable
{
    private static readonly HttpClient Http = new() { Timeout = TimeSpan.FromSeconds(2) };
    private readonly string _binary;
    private readonly string[] _arguments;
    private Process? _process;
    private StreamWriter? _log;

    private EtcdProcess(string binary, string name, string dataDir, int clientPort, int peerPort, int metricsPort, string initialCluster, string scheme, string[] extra)
    {
        _binary = binary;
        Name = name;
        DataDir = dataDir;
        ClientUrl = new Uri($"{scheme}://127.0.0.1:{clientPort}");
        HealthUrl = new Uri($"http://127.0.0.1:{metricsPort}/health");
        _arguments =
        [
            .. extra,
            // Plain HTTP /health (and metrics) apart from the client URL, which may need a client certificate.
            "--listen-metrics-urls", $"http://127.0.0.1:{metricsPort}",
            "--name", name, "--data-dir", dataDir,
            "--listen-client-urls", ClientUrl.ToString().TrimEnd('/'), "--advertise-client-urls", ClientUrl.ToString().TrimEnd('/'),
            "--listen-peer-urls", $"http://127.0.0.1:{peerPort}", "--initial-advertise-peer-urls", $"http://127.0.0.1:{peerPort}",
            "--initial-cluster", initialCluster, "--initial-cluster-state", "new", "--initial-cluster-token", Path.GetFileName(Path.GetDirectoryName(dataDir)!),
            // Fast elections on loopback; requests of the store's whole limit plus its prefixes.
            "--heartbeat-interval", "20", "--election-timeout", "200", "--max-request-bytes", "2097152",
        ];
    }

    /// <summary>The member's name.</summary>
    public string Name { get; }

    /// <summary>Its data directory (kept across <see cref="RestartAsync"/>).</summary>
    public string DataDir { get; }

    /// <summary>Its client URL.</summary>
    public Uri ClientUrl { get; }

    /// <summary>Its /health URL (plain HTTP).</summary>
    public Uri HealthUrl { get; }

    /// <summary>The running process's id.</summary>
    public int Pid => _process?.Id ?? 0;

    /// <summary>The etcd binary, or a skip (a failure under CI) naming the package.</summary>
    public static string Binary() => Requires.Tool("etcd", "etcd-server");

    /// <summary>Starts <paramref name="members"/> members forming one new cluster, and waits until it has a leader.</summary>
    /// <param name="members">How many members.</param>
    /// <param name="scheme">The client URLs' scheme ("https" needs TLS flags in <paramref name="extra"/>).</param>
    /// <param name="extra">More etcd flags for every member.</param>
    public static async Task<EtcdProcess[]> StartClusterAsync(int members = 1, string scheme = "http", params string[] extra)
    {
        string binary = Binary();
        string root = Directory.CreateTempSubdirectory("useroverlay-etcd-").FullName;
        var ports = Enumerable.Range(0, members).Select(_ => (Client: FreePort(), Peer: FreePort(), Metrics: FreePort())).ToArray();
        string initial = string.Join(',', ports.Select((p, i) => $"m{i}=http://127.0.0.1:{p.Peer}"));
        var all = ports.Select((p, i) => new EtcdProcess(binary, $"m{i}", Path.Combine(root, $"m{i}"), p.Client, p.Peer, p.Metrics, initial, scheme, extra)).ToArray();
        foreach (var m in all) m.Launch();
        try
        {
            foreach (var m in all) await m.WaitHealthyAsync();
        }
        catch
        {
            foreach (var m in all) await m.DisposeAsync();
            throw;
        }
        return all;
    }

    /// <summary>Starts one member alone.</summary>
    public static async Task<EtcdProcess> StartAsync(string scheme = "http", params string[] extra) => (await StartClusterAsync(1, scheme, extra))[0];

    private void Launch()
    {
        var start = new ProcessStartInfo(_binary) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (string a in _arguments) start.ArgumentList.Add(a);
        var log = _log = new StreamWriter(Path.Combine(Path.GetDirectoryName(DataDir)!, Name + ".log"), append: true) { AutoFlush = true };
        _process = Process.Start(start) ?? throw new InvalidOperationException("etcd did not start");
        _process.OutputDataReceived += (_, e) => Write(log, e.Data);
        _process.ErrorDataReceived += (_, e) => Write(log, e.Data);
        _process.BeginOutputReadLine();
        _process.BeginErrorReadLine();
    }

    private static void Write(StreamWriter log, string? line)
    {
        if (line is null) return;
        try { lock (log) log.WriteLine(line); }
        catch (ObjectDisposedException) { /* a line after the kill */ }
    }

    /// <summary>Waits until the member answers /health with a leader (10 s at most).</summary>
    public async Task WaitHealthyAsync()
    {
        var until = DateTime.UtcNow + TimeSpan.FromSeconds(10);
        while (true)
        {
            if (_process is { HasExited: true })
                throw new InvalidOperationException($"etcd {Name} exited with {_process.ExitCode}: {Tail()}");
            try
            {
                using var doc = JsonDocument.Parse(await Http.GetStringAsync(HealthUrl));
                if (doc.RootElement.GetProperty("health").GetString() == "true")
                {
                    // /health is served apart from the client URL: make sure that one accepts connections too.
                    using var probe = new TcpClient();
                    await probe.ConnectAsync(IPAddress.Loopback, ClientUrl.Port);
                    return;
                }
            }
            catch (Exception e) when (e is HttpRequestException or TaskCanceledException or JsonException or KeyNotFoundException or SocketException) { }
            if (DateTime.UtcNow > until) throw new TimeoutException($"etcd {Name} at {ClientUrl} is not healthy after 10 s: {Tail()}");
            await Task.Delay(25);
        }
    }

    private string Tail()
    {
        string log = Path.Combine(Path.GetDirectoryName(DataDir)!, Name + ".log");
        return File.Exists(log) ? string.Join('\n', File.ReadLines(log).TakeLast(5)) : "(no log)";
    }

    /// <summary>Kills the member (SIGKILL: what etcd acknowledged is on disk) and waits for its exit.</summary>
    public async Task KillAsync()
    {
        if (_process is null) return;
        if (!_process.HasExited) _process.Kill();
        await _process.WaitForExitAsync();
        _process.Dispose();
        _process = null;
        if (_log is { } log) lock (log) log.Dispose();
        _log = null;
    }

    /// <summary>Kills the member and starts it again on the same data directory and ports.</summary>
    public async Task RestartAsync(bool waitHealthy = true)
    {
        await KillAsync();
        Launch();
        if (waitHealthy) await WaitHealthyAsync();
    }

    /// <summary>The leases etcd holds, with the seconds each has left (through etcd's JSON gateway).</summary>
    public async Task<List<(long Id, long Ttl)>> LeasesAsync()
    {
        using var list = JsonDocument.Parse(await (await Http.PostAsync(new Uri(ClientUrl, "/v3/lease/leases"), new StringContent("{}"))).Content.ReadAsStringAsync());
        var result = new List<(long, long)>();
        if (!list.RootElement.TryGetProperty("leases", out var leases)) return result;
        foreach (var l in leases.EnumerateArray())
        {
            string id = l.GetProperty("ID").GetString()!;
            using var ttl = JsonDocument.Parse(await (await Http.PostAsync(new Uri(ClientUrl, "/v3/lease/timetolive"), new StringContent($"{{\"ID\":\"{id}\"}}"))).Content.ReadAsStringAsync());
            long left = ttl.RootElement.TryGetProperty("TTL", out var t) ? long.Parse(t.GetString()!) : -1;
            result.Add((long.Parse(id), left));
        }
        return result;
    }

    private static int FreePort()
    {
        using var l = new TcpListener(IPAddress.Loopback, 0);
        l.Start();
        return ((IPEndPoint)l.LocalEndpoint).Port;
    }

    /// <summary>Kills the member and removes its data directory (and, for the last member, the cluster's).</summary>
    public async ValueTask DisposeAsync()
    {
        await KillAsync();
        try
        {
            Directory.Delete(DataDir, recursive: true);
            string root = Path.GetDirectoryName(DataDir)!;
            if (!Directory.EnumerateDirectories(root).Any()) Directory.Delete(root, recursive: true);
        }
        catch (IOException) { }
        catch (UnauthorizedAccessException) { }
    }
}
