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
/// <c>run --network NET... -- CMD</c>, <c>ps</c>, <c>rm</c> (workloads);
/// and <c>version</c>.
/// Exit codes: 0 success, 1 runtime failure (the daemon's sentence on stderr), 2 invalid configuration or usage;
/// <c>run</c> returns its command's.
/// </summary>
internal static class Program
{
    private static int Main(string[] args) => Run(args);

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
            string command = string.Join(' ', Path(parsed.CommandResult.Command, parsed.RootCommandResult.Command));
            string message = parsed.Errors[0].Message.TrimEnd('.');
            invocation.Error.WriteLine($"useroverlay: {message} (see `{command} --help`)");
            return ExitCodes.Usage;
        }
        return parsed.Invoke(invocation);
    }

    private static IEnumerable<string> Path(Command leaf, Command root)
    {
        var names = new List<string>();
        for (Command? c = leaf; c is not null && c != root; c = c.Parents.OfType<Command>().FirstOrDefault()) names.Insert(0, c.Name);
        return names.Prepend("useroverlay");
    }

    /// <summary>The command tree (every command and option).</summary>
    public static RootCommand CreateRootCommand() =>
        new("UserOverlay: a userspace overlay network router (VXLAN over UDP, in the shape of Docker's overlay driver).")
        {
            UpCommand.Create(),
            StatusCommand.Create(),
            MembersCommand.Create(),
            SaCommand.Create(),
            NetworkCommand.Create(),
            RunCommand.Create(),
            PsCommand.Create(),
            RmCommand.Create(),
            VersionCommand.Create(),
        };
}
