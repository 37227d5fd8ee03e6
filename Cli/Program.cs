using System.CommandLine;
using System.CommandLine.Invocation;
using UserOverlay.Cli.Commands;

[assembly: System.Runtime.Versioning.SupportedOSPlatform("linux")]

namespace UserOverlay.Cli;

/// <summary>
/// The <c>useroverlay</c> binary. The daemon:
/// <c>up --config FILE [--name NAME] [--log-level LEVEL]</c> runs one host's router in the foreground (under systemd
/// too: samples/systemd/useroverlay.service).
/// Client commands, each talking to a running router over its control socket, chosen with
/// <c>-H/--host NAME|SOCKET</c>, else $USEROVERLAY_HOST, else the only one running (Client/RouterHost):
/// <c>status [--json]</c>; <c>members [--json]</c> (gossip mode); <c>sa (--config FILE | -H NAME) [--json]</c> (ESP
/// SAs with keys, for decrypting captures); <c>network create|ls|inspect|rm|connect|disconnect</c>;
/// <c>run --network NET... -- CMD</c>, <c>ps</c>, <c>rm</c> (workloads); <c>swarm init|join|leave|join-token|status</c>
/// and <c>node ls|rm|promote|demote</c> (the cluster);
/// and <c>version</c>.
/// Exit codes: 0 success, 1 runtime failure (the daemon's sentence on stderr), 2 invalid configuration or usage;
/// <c>run</c> returns its command's.
/// </summary>
internal static class Program
{
    private static int Main(string[] args) =>
        Cni.CniPlugin.IsInvocation(args) ? Cni.CniPlugin.RunProcess() : Run(args); // useroverlay-cni (Cli/Cni)

    /// <summary>
    /// Parses and runs a command line. A usage error prints one sentence (not the help text) and returns 2;
    /// <paramref name="output"/> and <paramref name="error"/> default to the console (tests pass writers).
    /// </summary>
    public static int Run(IReadOnlyList<string> args, TextWriter? output = null, TextWriter? error = null)
    {
        // No response files: `run -- echo @x` must pass "@x" to echo, not read a file named x.
        var parsed = CreateRootCommand().Parse(args, new ParserConfiguration { ResponseFileTokenReplacer = null });
        var invocation = new InvocationConfiguration { Output = output ?? Console.Out, Error = error ?? Console.Error };
        if (parsed.Action is ParseErrorAction)
        {
            var command = parsed.CommandResult.Command;
            var first = parsed.Errors.FirstOrDefault(e => e.Message.StartsWith("Unrecognized", StringComparison.Ordinal)) ?? parsed.Errors[0];
            invocation.Error.WriteLine($"useroverlay: {first.Message.TrimEnd('.')} (usage: {Usage(command)}; see --help)");
            return ExitCodes.Usage;
        }
        return parsed.Invoke(invocation);
    }

    /// <summary>"useroverlay network create [OPTIONS] NAME", from the command's place in the tree and its arguments.</summary>
    private static string Usage(Command command)
    {
        var words = new List<string>();
        for (Command? c = command; c is not null and not RootCommand; c = c.Parents.OfType<Command>().FirstOrDefault()) words.Insert(0, c.Name);
        words.Insert(0, "useroverlay");
        if (command.Subcommands.Count > 0) words.Add("COMMAND");
        else if (command.Options.Count > 0) words.Add("[OPTIONS]");
        words.AddRange(command.Arguments.Where(a => !a.Hidden)
            .Select(a => (a.HelpName ?? a.Name) + (a.Arity.MaximumNumberOfValues > 1 ? "..." : "")));
        return string.Join(' ', words);
    }

    /// <summary>The command tree (every command and option).</summary>
    public static RootCommand CreateRootCommand() =>
        new RootCommand("UserOverlay: a userspace overlay network router (VXLAN over UDP, in the shape of Docker's overlay driver).")
        {
            UpCommand.Create(),
            StatusCommand.Create(),
            MembersCommand.Create(),
            SaCommand.Create(),
            CaptureCommand.Create(),
            NetworkCommand.Create(),
            SwarmCommand.Create(),
            NodeCommand.Create(),
            RunCommand.Create(),
            PsCommand.Create(),
            RmCommand.Create(),
            VersionCommand.Create(),
        }.WithVersionOption();
}
