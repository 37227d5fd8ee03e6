using System.Diagnostics;
using System.Runtime.InteropServices;

namespace UserOverlay.Testing.Common;

/// <summary>
/// Preconditions of tests that need more than a .NET runtime (root, namespaces, Debian tools).
/// Outside CI a missing precondition skips the test with the reason; inside CI (environment
/// variable CI set, as .ci/run does) it fails the test, so a CI run can never pass by skipping.
/// </summary>
public static partial class Requires
{
    /// <summary>True when running under CI (the CI environment variable is set and not "false"/"0").</summary>
    public static bool IsCI
    {
        get
        {
            string? ci = Environment.GetEnvironmentVariable("CI");
            return !string.IsNullOrEmpty(ci) && ci != "0" && !ci.Equals("false", StringComparison.OrdinalIgnoreCase);
        }
    }

    [LibraryImport("libc")]
    private static partial uint geteuid();

    /// <summary>True when the process runs as root (effective uid 0).</summary>
    public static bool IsRoot => OperatingSystem.IsLinux() && geteuid() == 0;

    /// <summary>Requires root (network namespaces, TAP devices). Fails in CI, skips elsewhere.</summary>
    public static void Root()
    {
        if (!OperatingSystem.IsLinux())
            Unavailable("this test needs Linux (network namespaces and TAP devices)");
        if (!IsRoot)
            Unavailable("this test needs root: it builds hosts out of network namespaces (run the README's test command as root; CI runs as root)");
        if (!File.Exists("/dev/net/tun"))
            Unavailable("this test needs /dev/net/tun (the TUN/TAP driver)");
    }

    /// <summary>Requires <paramref name="count"/> CPUs this process may run on (CPU steering tests). Fails in CI, skips elsewhere.</summary>
    public static void Cpus(int count)
    {
        if (Environment.ProcessorCount < count)
            Unavailable($"this test needs {count} CPUs (it sends from each and checks which queue receives); this machine gives the process {Environment.ProcessorCount}");
    }

    /// <summary>Requires an executable on PATH (serf, iperf3, tshark, …). Fails in CI, skips elsewhere.</summary>
    public static string Tool(string name, string debianPackage)
    {
        string? path = Which(name);
        if (path is null)
            Unavailable($"this test needs '{name}' on PATH (Debian package '{debianPackage}': apt-get install {debianPackage}; .ci/run installs it)");
        return path!;
    }

    /// <summary>Finds an executable on PATH, or null.</summary>
    public static string? Which(string name)
    {
        foreach (string dir in (Environment.GetEnvironmentVariable("PATH") ?? "/usr/bin:/bin:/usr/sbin:/sbin").Split(':').Concat(["/usr/sbin", "/sbin"]))
        {
            if (dir.Length == 0) continue;
            string candidate = Path.Combine(dir, name);
            if (File.Exists(candidate)) return candidate;
        }
        return null;
    }

    private static void Unavailable(string reason)
    {
        if (IsCI)
            Assert.Fail("CI must run every test, but " + reason + ".");
        Assert.Skip(reason);
    }
}

/// <summary>Where the repository's sources are (recorded at build time).</summary>
public static class Repo
{
    /// <summary>The directory holding UserOverlay.sln.</summary>
    public static string Root { get; } =
        typeof(Repo).Assembly.GetCustomAttributes(typeof(System.Reflection.AssemblyMetadataAttribute), false)
            .OfType<System.Reflection.AssemblyMetadataAttribute>().FirstOrDefault(a => a.Key == "RepoRoot")?.Value
        ?? throw new InvalidOperationException("the RepoRoot assembly metadata is missing (set by Tests/Directory.Build.props)");
}

/// <summary>Polls a condition until it holds or a deadline passes (memberlist's waitForCondition), instead of sleeping.</summary>
public static class Eventually
{
    /// <summary>Waits until <paramref name="condition"/> returns true; fails with <paramref name="what"/> after <paramref name="timeout"/>.</summary>
    public static async Task True(Func<bool> condition, TimeSpan timeout, string what, int pollMilliseconds = 50)
    {
        var sw = Stopwatch.StartNew();
        while (true)
        {
            if (condition()) return;
            if (sw.Elapsed > timeout)
                Assert.Fail($"timed out after {timeout.TotalSeconds:0.#} s waiting for: {what}");
            await Task.Delay(pollMilliseconds);
        }
    }

    /// <summary>Async-condition variant.</summary>
    public static async Task True(Func<Task<bool>> condition, TimeSpan timeout, string what, int pollMilliseconds = 50)
    {
        var sw = Stopwatch.StartNew();
        while (true)
        {
            if (await condition()) return;
            if (sw.Elapsed > timeout)
                Assert.Fail($"timed out after {timeout.TotalSeconds:0.#} s waiting for: {what}");
            await Task.Delay(pollMilliseconds);
        }
    }
}
