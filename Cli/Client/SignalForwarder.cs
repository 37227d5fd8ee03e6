using System.Runtime.InteropServices;

namespace UserOverlay.Cli.Client;

/// <summary>
/// While <c>run</c> waits for its command: SIGINT, SIGTERM, SIGHUP and SIGQUIT do not kill the CLI (it still has to
/// remove the workload) but go to the command, as a shell's foreground job or <c>docker run</c>'s signal proxy
/// would have them. A signal that arrives before the command runs is kept in <see cref="Received"/>, and the CLI
/// then starts nothing. Simplification: Ctrl-C at a terminal reaches the command twice (from the terminal, which
/// signals the whole foreground group, and forwarded); commands that trap SIGINT see two.
/// </summary>
public sealed class SignalForwarder : IDisposable
{
    private readonly List<PosixSignalRegistration> _registrations = [];
    private readonly Lock _lock = new();
    private int _pid;

    /// <summary>Linux numbers of the forwarded signals.</summary>
    private static readonly (PosixSignal Signal, int Number)[] Forwarded =
        [(PosixSignal.SIGINT, 2), (PosixSignal.SIGTERM, 15), (PosixSignal.SIGHUP, 1), (PosixSignal.SIGQUIT, 3)];

    public SignalForwarder()
    {
        foreach (var (signal, number) in Forwarded)
            _registrations.Add(PosixSignalRegistration.Create(signal, ctx =>
            {
                ctx.Cancel = true; // not the runtime's default (exit): the workload has to go first
                lock (_lock)
                {
                    Received ??= number;
                    if (_pid != 0) NamespaceProcess.Signal(_pid, number);
                }
            }));
    }

    /// <summary>The first signal received (its Linux number), or null.</summary>
    public int? Received { get; private set; }

    /// <summary>Forwards from now on to <paramref name="pid"/>; a signal received before is forwarded at once.</summary>
    public void Attach(int pid)
    {
        lock (_lock)
        {
            _pid = pid;
            if (Received is { } pending) NamespaceProcess.Signal(pid, pending);
        }
    }

    public void Dispose()
    {
        foreach (var r in _registrations) r.Dispose();
    }
}
