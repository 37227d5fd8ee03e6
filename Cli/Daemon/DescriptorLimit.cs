using System.Runtime.InteropServices;

namespace UserOverlay.Cli.Daemon;

/// <summary>
/// Raises the daemon's soft limit of open file descriptors (RLIMIT_NOFILE) to its hard limit at start. Every endpoint
/// holds one descriptor per queue (its TAP), so a router of 1,000 endpoints on two queues needs over 2,000, while
/// systemd starts services with a soft limit of 1,024 (hard 524,288) and shells often give the same. The JIT runtime
/// (CoreCLR) raises the soft limit by itself; the ahead-of-time compiled binary does not (dotnet/runtime#82719), so
/// without this the installed binary refused the 499th endpoint with "Too many open files". As Go, Node.js and Deno do.
/// </summary>
internal static partial class DescriptorLimit
{
    private const int RlimitNofile = 7;

    [StructLayout(LayoutKind.Sequential)]
    private struct Rlimit
    {
        public ulong Current;
        public ulong Maximum;
    }

    /// <summary>Sets the soft limit to the hard one; returns the soft limit in force afterwards (null if it cannot be read).</summary>
    public static ulong? RaiseToHard()
    {
        if (!OperatingSystem.IsLinux() || getrlimit(RlimitNofile, out var limit) != 0) return null;
        if (limit.Current >= limit.Maximum) return limit.Current;
        var raised = limit with { Current = limit.Maximum };
        return setrlimit(RlimitNofile, in raised) == 0 ? raised.Current : limit.Current;
    }

    [LibraryImport("libc", SetLastError = true)]
    private static partial int getrlimit(int resource, out Rlimit limit);

    [LibraryImport("libc", SetLastError = true)]
    private static partial int setrlimit(int resource, in Rlimit limit);
}
