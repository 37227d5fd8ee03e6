using System.Diagnostics;
using System.Globalization;

namespace UserOverlay.Bench.E2e;

/// <summary>
/// What the harnesses share: the processes they start (stopped by PID, never by name), the namespaces they make
/// (all named <see cref="Prefix"/>*, removed by <see cref="Cleanup"/>), and how they run useroverlay.
/// One harness runs per process.
/// </summary>
internal static class Shell
{
    private static readonly List<Process> Started = [];

    /// <summary>Namespaces to delete on cleanup.</summary>
    internal static readonly List<string> Namespaces = [];

    /// <summary>uobench-PID-: the prefix of every namespace and temporary file of this run.</summary>
    internal static string Prefix { get; set; } = "";

    /// <summary>The native binary given with --binary, or null for `dotnet useroverlay.dll`.</summary>
    internal static string? Binary { get; set; }

    /// <summary>The name of this run's namespace <paramref name="n"/>.</summary>
    internal static string Ns(string n) => Prefix + n;

    internal static long CpuTicks(int pid)
    {
        try
        {
            string stat = File.ReadAllText($"/proc/{pid}/stat");
            var f = stat[(stat.LastIndexOf(')') + 2)..].Split(' ');
            return long.Parse(f[11], CultureInfo.InvariantCulture) + long.Parse(f[12], CultureInfo.InvariantCulture); // utime, stime
        }
        catch (IOException) { return 0; }
    }

    internal sealed record Result(int Code, string Out, string Err);

    internal static string Dotnet() =>
        Environment.GetEnvironmentVariable("DOTNET_HOST_PATH") is { Length: > 0 } p && File.Exists(p) ? p : Which("dotnet") ?? "/usr/share/dotnet/dotnet";

    internal static string? Which(string name) =>
        (Environment.GetEnvironmentVariable("PATH") ?? "").Split(':').Concat(["/usr/sbin", "/sbin"])
            .Select(d => Path.Combine(d, name)).FirstOrDefault(File.Exists);

    /// <summary>How to run useroverlay: the --binary given, or `dotnet useroverlay.dll`.</summary>
    internal static string[] CliCommand(string cli) => Binary is not null ? [Binary] : [Dotnet(), cli];

    internal static Process Start(string file, params string[] args)
    {
        var psi = new ProcessStartInfo(file) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var a in args) psi.ArgumentList.Add(a);
        var p = Process.Start(psi)!;
        p.OutputDataReceived += (_, _) => { };
        p.ErrorDataReceived += (_, _) => { };
        p.BeginOutputReadLine();
        p.BeginErrorReadLine();
        lock (Started) Started.Add(p);
        return p;
    }

    internal static Result Exec(string file, params string[] args)
    {
        var psi = new ProcessStartInfo(file) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var a in args) psi.ArgumentList.Add(a);
        using var p = Process.Start(psi)!;
        var err = p.StandardError.ReadToEndAsync();
        string output = p.StandardOutput.ReadToEnd();
        p.WaitForExit();
        return new Result(p.ExitCode, output, err.Result);
    }

    internal static void Must(string file, params string[] args)
    {
        var r = Exec(file, args);
        if (r.Code != 0) throw new InvalidOperationException($"{file} {string.Join(' ', args)}: {r.Err}");
    }

    internal static void Cleanup()
    {
        lock (Started)
        {
            foreach (var p in Started)
            {
                try { if (!p.HasExited) { p.Kill(); p.WaitForExit(5000); } } catch (InvalidOperationException) { }
            }
            Started.Clear();
        }
        foreach (var n in Namespaces) Exec("ip", "netns", "del", n);
        Namespaces.Clear();
        if (Prefix.Length == 0) return; // nothing of this run's in the temporary directory, and "*" would be everything
        foreach (var f in Directory.GetFiles(Path.GetTempPath(), Prefix + "*")) File.Delete(f);
        foreach (var d in Directory.GetDirectories(Path.GetTempPath(), Prefix + "*")) Directory.Delete(d, recursive: true);
    }

    internal static int IntArg(string[] args, string name, int def)
    {
        int i = Array.IndexOf(args, name);
        return i >= 0 && i + 1 < args.Length && int.TryParse(args[i + 1], out int v) ? v : def;
    }
}
