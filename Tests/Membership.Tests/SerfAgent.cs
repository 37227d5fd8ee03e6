using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Security.Cryptography;
using System.Text.Json;
using UserOverlay.Testing.Common;

namespace UserOverlay.Membership.Tests;

/// <summary>
/// One Debian <c>serf agent</c> (memberlist 0.2.x inside) on a loopback address of its own, as a
/// reference peer. Started by the test, stopped by PID in Dispose (SIGKILL if it does not exit).
/// </summary>
public sealed class SerfAgent : IDisposable
{
    private readonly Process _process;
    private readonly System.Text.StringBuilder _log = new();

    public string Name { get; }
    public IPEndPoint Bind { get; }
    public string RpcAddress { get; }
    public int Pid => _process.Id;

    private SerfAgent(string name, IPEndPoint bind, string rpc, Process p)
    {
        Name = name;
        Bind = bind;
        RpcAddress = rpc;
        _process = p;
    }

    /// <summary>A random 127.x.y.z address (x in 100..199), so concurrent tests never share an address.</summary>
    public static IPAddress RandomLoopback()
    {
        var b = RandomNumberGenerator.GetBytes(3);
        return new IPAddress([127, (byte)(100 + b[0] % 100), b[1], (byte)(1 + b[2] % 250)]);
    }

    /// <summary>A port free for both UDP and TCP on <paramref name="ip"/>.</summary>
    public static int FreePort(IPAddress ip)
    {
        for (int i = 0; i < 50; i++)
        {
            using var t = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
            t.Bind(new IPEndPoint(ip, 0));
            int port = ((IPEndPoint)t.LocalEndPoint!).Port;
            try
            {
                using var u = new Socket(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp);
                u.Bind(new IPEndPoint(ip, port));
                return port;
            }
            catch (SocketException) { }
        }
        throw new InvalidOperationException("no free port");
    }

    public static SerfAgent Start(string name, IPAddress ip, string? key = null, string? join = null, string profile = "local", params string[] tags)
    {
        // Ports are picked free and then released, so another process (or the second pick) may take one
        // before serf binds it: a start that dies of a taken address is retried with new ports.
        for (int attempt = 1; ; attempt++)
        {
            var (agent, exited) = TryStart(name, ip, key, join, profile, tags);
            if (agent is not null) return agent;
            if (attempt < 3 && exited.Contains("address already in use", StringComparison.OrdinalIgnoreCase)) continue;
            throw new InvalidOperationException(exited);
        }
    }

    private static (SerfAgent? Agent, string Failure) TryStart(string name, IPAddress ip, string? key, string? join, string profile, string[] tags)
    {
        string serf = Requires.Tool("serf", "serf");
        int port = FreePort(ip);
        int rpcPort;
        do rpcPort = FreePort(ip); while (rpcPort == port);
        string rpc = $"{ip}:{rpcPort}";
        var psi = new ProcessStartInfo(serf) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var a in new[] { "agent", $"-node={name}", $"-bind={ip}:{port}", $"-rpc-addr={rpc}", "-log-level=debug", $"-profile={profile}" }) psi.ArgumentList.Add(a);
        if (key is not null) psi.ArgumentList.Add($"-encrypt={key}");
        if (join is not null) psi.ArgumentList.Add($"-join={join}");
        foreach (var t in tags) { psi.ArgumentList.Add("-tag"); psi.ArgumentList.Add(t); }
        var p = Process.Start(psi) ?? throw new InvalidOperationException("could not start serf");
        var agent = new SerfAgent(name, new IPEndPoint(ip, port), rpc, p);
        p.OutputDataReceived += (_, e) => { if (e.Data is not null) lock (agent._log) agent._log.AppendLine(e.Data); };
        p.ErrorDataReceived += (_, e) => { if (e.Data is not null) lock (agent._log) agent._log.AppendLine(e.Data); };
        p.BeginOutputReadLine();
        p.BeginErrorReadLine();
        var sw = Stopwatch.StartNew();
        while (true)
        {
            if (p.HasExited)
            {
                p.WaitForExit(); // the output readers are drained
                string failure = $"serf exited {p.ExitCode}:\n{agent.Log}";
                agent.Dispose();
                return (null, failure);
            }
            if (Shell.Run(serf, ["members", $"-rpc-addr={rpc}"], TimeSpan.FromSeconds(5)).ExitCode == 0) break;
            if (sw.Elapsed > TimeSpan.FromSeconds(15))
            {
                string failure = "serf RPC not answering:\n" + agent.Log;
                agent.Dispose();
                return (null, failure);
            }
            Thread.Sleep(100);
        }
        return (agent, "");
    }

    public string Log { get { lock (_log) return _log.ToString(); } }

    public sealed record SerfMember(string Name, string Addr, string Status, Dictionary<string, string> Tags, int ProtocolVersion);

    /// <summary><c>serf members -format=json</c>.</summary>
    public IReadOnlyList<SerfMember> Members()
    {
        var r = Shell.Run("serf", ["members", $"-rpc-addr={RpcAddress}", "-format=json"], TimeSpan.FromSeconds(10));
        if (r.ExitCode != 0) return [];
        using var doc = JsonDocument.Parse(r.StdOut);
        return doc.RootElement.GetProperty("members").EnumerateArray().Select(m => new SerfMember(
            m.GetProperty("name").GetString()!,
            m.GetProperty("addr").GetString()!,
            m.GetProperty("status").GetString()!,
            m.GetProperty("tags").EnumerateObject().ToDictionary(p => p.Name, p => p.Value.GetString() ?? ""),
            m.GetProperty("protocol").GetProperty("version").GetInt32())).ToList();
    }

    public string? StatusOf(string node) => Members().FirstOrDefault(m => m.Name == node)?.Status;

    /// <summary><c>serf join</c> through RPC; true on success.</summary>
    public bool Join(IPEndPoint to) => Shell.Run("serf", ["join", $"-rpc-addr={RpcAddress}", to.ToString()], TimeSpan.FromSeconds(20)).ExitCode == 0;

    /// <summary><c>serf leave</c>: graceful leave (the agent then exits).</summary>
    public void Leave() => Shell.Run("serf", ["leave", $"-rpc-addr={RpcAddress}"], TimeSpan.FromSeconds(20));

    public void Signal(string sig) => Shell.Run("kill", [$"-{sig}", Pid.ToString()]).EnsureSuccess();

    public void Kill()
    {
        try { if (!_process.HasExited) { _process.Kill(); _process.WaitForExit(5000); } } catch (InvalidOperationException) { }
    }

    public void Dispose()
    {
        try
        {
            if (!_process.HasExited)
            {
                try { Signal("CONT"); } catch (InvalidOperationException) { }
                _process.Kill();
                _process.WaitForExit(5000);
            }
        }
        catch (InvalidOperationException) { }
        _process.Dispose();
    }
}
