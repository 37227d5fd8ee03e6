using System.CommandLine;
using System.ComponentModel;
using UserOverlay.Cli.Client;
using UserOverlay.Cli.Daemon;

namespace UserOverlay.Cli.Commands;

/// <summary>
/// <c>useroverlay run [--name NAME] --network NET [--network NET2]... [--ip IP] [--alias A]... [-d] -- CMD [ARGS...]</c>:
/// the router makes a fresh network namespace attached to the networks (POST /v1/workloads), CMD runs inside it with
/// this terminal's stdin, stdout and stderr, and its exit status is run's (128+N when signal N killed it, as a shell
/// reports it; 127/126 when it cannot be started). Then the workload is removed (DELETE /v1/workloads/NAME); SIGINT,
/// SIGTERM, SIGHUP and SIGQUIT go to CMD first. Killed outright, run leaves nothing either: the daemon watches its PID.
/// <c>--ip</c> and <c>--alias</c> apply to the first --network (connect the others with their own addresses through
/// <c>network connect</c> if need be). <c>-d</c>: the workload stays until <c>useroverlay rm NAME</c> and its name
/// is printed; a CMD then runs detached in it (output discarded), none just holds the namespace.
/// </summary>
internal static class RunCommand
{
    public static Command Create()
    {
        var name = new Option<string?>("--name") { Description = "The workload's name (its namespace is uo-NAME); default: one the router makes up.", HelpName = "NAME" };
        var network = new Option<string[]>("--network") { Description = "A network to attach to, in order (repeatable; at least one).", HelpName = "NETWORK", Required = true };
        var ip = new Option<string?>("--ip") { Description = "A fixed address on the first network.", HelpName = "IP" };
        var alias = ClientOptions.Repeated("--alias", "Another name on the first network (repeatable).", "NAME");
        var detach = new Option<bool>("--detach", "-d") { Description = "Leave the workload running and print its name (remove it with `useroverlay rm`)." };
        var command = new Argument<string[]>("CMD") { Description = "The command and its arguments (after --).", Arity = ArgumentArity.ZeroOrMore };
        var cmd = new Command("run", "Run a command in a fresh network namespace attached to networks; the namespace goes when the command ends.")
            { name, network, ip, alias, detach, command };
        var host = HostOption.AddTo(cmd);
        cmd.SetAction(p => ClientSession.Run(p, host, s =>
        {
            string[] networks = p.GetValue(network)!, aliases = p.GetValue(alias)!, argv = p.GetValue(command)!;
            var request = new WorkloadCreateRequest
            {
                Name = p.GetValue(name),
                Networks = [.. networks.Select((n, i) => i == 0
                    ? new WorkloadNetworkRequest(n, p.GetValue(ip), aliases.Length == 0 ? null : aliases)
                    : new WorkloadNetworkRequest(n))],
                Detached = p.GetValue(detach),
                ClientPid = p.GetValue(detach) ? null : Environment.ProcessId,
            };
            return Run(s, request, argv);
        }));
        return cmd;
    }

    private static int Run(ClientSession s, WorkloadCreateRequest request, string[] argv)
    {
        if (!request.Detached && argv.Length == 0)
            throw new UsageException("run needs a command: `useroverlay run --network NET -- CMD [ARGS...]` (or -d to only hold the namespace)");
        try
        {
            if (argv.Length > 0) NamespaceProcess.CheckRunnable(argv[0]); // before anything is made for it
        }
        catch (CommandNotRunnableException e)
        {
            s.Error.WriteLine("useroverlay: " + e.Message);
            return e.ExitCode;
        }
        // Registered before the workload exists: from then on a signal cannot kill the CLI between the two requests.
        using var signals = request.Detached ? null : new SignalForwarder();
        var w = s.Post("v1/workloads", request, ControlJson.Default.WorkloadCreateRequest, ControlJson.Default.WorkloadView);
        bool keep = false;
        try
        {
            if (signals?.Received is { } early) return 128 + early;
            if (request.Detached)
            {
                if (argv.Length > 0) Start(w, argv, detached: true).Dispose();
                s.Out.WriteLine(w.Name);
                keep = true;
                return ExitCodes.Ok;
            }
            using var child = Start(w, argv, detached: false);
            signals!.Attach(child.Id);
            child.WaitForExit();
            return child.ExitCode; // .NET reports a signal-killed child as 128+N already
        }
        catch (CommandNotRunnableException e)
        {
            s.Error.WriteLine("useroverlay: " + e.Message);
            return e.ExitCode;
        }
        finally
        {
            if (!keep) Remove(s, w.Name);
        }
    }

    private static System.Diagnostics.Process Start(WorkloadView w, string[] argv, bool detached)
    {
        try
        {
            return NamespaceProcess.Start(w.NetnsPath, argv, detached);
        }
        catch (Win32Exception e)
        {
            throw new CommandNotRunnableException(e.NativeErrorCode == 13 ? 126 : 127, $"cannot run {TextTable.Printable(argv[0])}: {e.Message}");
        }
    }

    /// <summary>Removes the workload; one already gone (removed by `useroverlay rm`, or by the daemon) is fine.</summary>
    private static void Remove(ClientSession s, string name)
    {
        try
        {
            s.Delete("v1/workloads/" + ClientSession.Segment(name));
        }
        catch (DaemonErrorException e) when (e.ApiCode == "not_found")
        {
        }
        catch (Exception e) when (e is UserOverlay.Router.RouterException)
        {
            s.Error.WriteLine($"useroverlay: the workload {name} could not be removed ({e.Message}); remove it with `useroverlay rm {name}`");
        }
    }
}
