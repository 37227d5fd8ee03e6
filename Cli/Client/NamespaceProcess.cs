using System.ComponentModel;
using System.Diagnostics;
using System.Runtime.InteropServices;
using UserOverlay.Router.Netns;

namespace UserOverlay.Cli.Client;

/// <summary>
/// Starts a command inside a network namespace, for <c>useroverlay run</c>.
/// <para>
/// How: a dedicated thread enters the namespace with setns(CLONE_NEWNET) (<see cref="Namespaces.RunIn{T}"/>) and
/// starts the process from there; fork copies the calling thread's namespaces, so the child is born inside, and the
/// thread goes back to its own namespace afterwards (allowed in a multithreaded process for network namespaces,
/// unlike user or mount ones). Chosen over exec'ing <c>nsenter --net=PATH</c>: no dependency on util-linux, no
/// process in between, so the PID the CLI waits for and signals is the command's own and its exit status is the
/// command's. Arguments go to execve as a vector (ProcessStartInfo.ArgumentList): no shell ever sees them, except
/// the detached form's fixed <c>sh -c 'exec "$@"'</c> wrapper, which passes them on as positional parameters.
/// </para>
/// </summary>
public static partial class NamespaceProcess
{
    /// <summary>
    /// Starts <paramref name="command"/> (file and arguments) in the namespace at <paramref name="netnsPath"/>.
    /// Attached: stdin, stdout and stderr are this process's. <paramref name="detached"/>: they are /dev/null and
    /// SIGHUP is ignored, so the command outlives this process and its terminal.
    /// </summary>
    public static Process Start(string netnsPath, IReadOnlyList<string> command, bool detached)
    {
        var psi = new ProcessStartInfo { UseShellExecute = false };
        // A workload with a resolv.conf of its own (/etc/netns/NAME/resolv.conf, pointing at its gateways) starts through
        // `ip netns exec NAME`, which bind-mounts it over /etc/resolv.conf in a mount namespace of the command's and then
        // execs the command (the PID stays the command's).
        string netnsName = Path.GetFileName(netnsPath);
        if (netnsPath == Path.Combine("/run/netns", netnsName) && File.Exists(Path.Combine("/etc/netns", netnsName, "resolv.conf"))
            && Array.Find(["/usr/sbin/ip", "/sbin/ip", "/usr/bin/ip", "/bin/ip"], File.Exists) is { } ip)
        {
            psi.FileName = ip;
            foreach (string a in (string[])["netns", "exec", netnsName]) psi.ArgumentList.Add(a);
            if (detached)
                foreach (string a in (string[])["/bin/sh", "-c", "trap '' HUP; exec \"$@\" </dev/null >/dev/null 2>&1", "useroverlay-run"]) psi.ArgumentList.Add(a);
            foreach (string a in command) psi.ArgumentList.Add(a);
            return Process.Start(psi) ?? throw new Win32Exception(2);
        }
        if (detached)
        {
            psi.FileName = "/bin/sh";
            foreach (string a in (string[])["-c", "trap '' HUP; exec \"$@\" </dev/null >/dev/null 2>&1", "useroverlay-run"]) psi.ArgumentList.Add(a);
            foreach (string a in command) psi.ArgumentList.Add(a);
        }
        else
        {
            psi.FileName = command[0];
            foreach (string a in command.Skip(1)) psi.ArgumentList.Add(a);
        }
        return Namespaces.RunIn(netnsPath, () => Process.Start(psi) ?? throw new Win32Exception(2));
    }

    /// <summary>
    /// Checks that <paramref name="file"/> names an executable (on PATH when it has no '/') before anything is made
    /// for it; throws <see cref="CommandNotRunnableException"/> with a shell's exit code (127 not found, 126 not executable).
    /// </summary>
    public static void CheckRunnable(string file)
    {
        string? path = file.Contains('/') ? (File.Exists(file) ? file : null)
            : (Environment.GetEnvironmentVariable("PATH") ?? "/usr/local/bin:/usr/bin:/bin").Split(':', StringSplitOptions.RemoveEmptyEntries)
                .Select(d => Path.Combine(d, file)).FirstOrDefault(File.Exists);
        if (path is null) throw new CommandNotRunnableException(127, $"{TextTable.Printable(file)}: command not found");
        if (Directory.Exists(path) || (File.GetUnixFileMode(path) & (UnixFileMode.UserExecute | UnixFileMode.GroupExecute | UnixFileMode.OtherExecute)) == 0)
            throw new CommandNotRunnableException(126, $"{TextTable.Printable(file)}: permission denied (not an executable file)");
    }

    /// <summary>Sends signal <paramref name="signal"/> (a Linux number) to <paramref name="pid"/>; false if it is gone.</summary>
    public static bool Signal(int pid, int signal) => kill(pid, signal) == 0;

    // DllImport, not LibraryImport: the signature is blittable (no marshalling code, fine under NativeAOT) and the
    // Cli project does not allow unsafe code, which the LibraryImport generator needs.
    [DllImport("libc", EntryPoint = "kill", SetLastError = true)]
#pragma warning disable SYSLIB1054
    private static extern int kill(int pid, int sig);
#pragma warning restore SYSLIB1054
}

/// <summary>The command given to <c>run</c> cannot be started; <see cref="ExitCode"/> is a shell's (126 or 127).</summary>
public sealed class CommandNotRunnableException(int exitCode, string message) : Exception(message)
{
    public int ExitCode { get; } = exitCode;
}
