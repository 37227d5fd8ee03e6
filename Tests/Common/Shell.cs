using System.Diagnostics;
using System.Text;

namespace UserOverlay.Testing.Common;

/// <summary>Result of a finished command.</summary>
public sealed record CommandResult(string Command, int ExitCode, string StdOut, string StdErr)
{
    /// <summary>Throws with the command's output unless it exited 0.</summary>
    public CommandResult EnsureSuccess()
    {
        if (ExitCode != 0)
            throw new InvalidOperationException($"'{Command}' exited {ExitCode}\nstdout: {StdOut}\nstderr: {StdErr}");
        return this;
    }
}

/// <summary>Runs commands for test set-up (ip, iperf3, tshark…). Never used by the product itself.</summary>
public static class Shell
{
    /// <summary>Runs a program with arguments (no shell), waits up to <paramref name="timeout"/> (default 60 s).</summary>
    public static CommandResult Run(string file, IEnumerable<string> args, TimeSpan? timeout = null, string? stdin = null)
    {
        var psi = new ProcessStartInfo(file)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            RedirectStandardInput = stdin is not null,
            UseShellExecute = false,
        };
        foreach (string a in args) psi.ArgumentList.Add(a);
        string cmd = file + " " + string.Join(' ', psi.ArgumentList);
        using var p = Process.Start(psi) ?? throw new InvalidOperationException("could not start " + file);
        var stdout = new StringBuilder();
        var stderr = new StringBuilder();
        p.OutputDataReceived += (_, e) => { if (e.Data is not null) lock (stdout) stdout.AppendLine(e.Data); };
        p.ErrorDataReceived += (_, e) => { if (e.Data is not null) lock (stderr) stderr.AppendLine(e.Data); };
        p.BeginOutputReadLine();
        p.BeginErrorReadLine();
        if (stdin is not null)
        {
            p.StandardInput.Write(stdin);
            p.StandardInput.Close();
        }
        if (!p.WaitForExit((int)(timeout ?? TimeSpan.FromSeconds(60)).TotalMilliseconds))
        {
            try { p.Kill(entireProcessTree: true); } catch (InvalidOperationException) { }
            p.WaitForExit();
            return new CommandResult(cmd, -1, stdout.ToString(), stderr + "\n(timed out)");
        }
        p.WaitForExit();
        return new CommandResult(cmd, p.ExitCode, stdout.ToString(), stderr.ToString());
    }

    /// <summary>Runs a command line split on spaces (arguments must not contain spaces).</summary>
    public static CommandResult Run(string commandLine, TimeSpan? timeout = null)
    {
        string[] parts = commandLine.Split(' ', StringSplitOptions.RemoveEmptyEntries);
        return Run(parts[0], parts.Skip(1), timeout);
    }

    /// <summary>Runs and throws unless it exits 0.</summary>
    public static CommandResult Must(string commandLine, TimeSpan? timeout = null) => Run(commandLine, timeout).EnsureSuccess();
}
