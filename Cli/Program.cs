using System.CommandLine;
using UserOverlay.Cli.Commands;

[assembly: System.Runtime.Versioning.SupportedOSPlatform("linux")]

namespace UserOverlay.Cli;

/// <summary>
/// The <c>useroverlay</c> binary. Commands:
/// <c>up --config FILE [--name NAME] [--log-level LEVEL]</c> runs one host's daemon in the foreground (under systemd
/// too: samples/systemd/useroverlay.service);
/// <c>status [--name NAME] [--json]</c> asks a running router over its control socket;
/// <c>members [--name NAME] [--json]</c> lists its gossip cluster (gossip mode);
/// <c>sa (--config FILE | --name NAME) [--json]</c> prints the ESP SAs (with keys) for decrypting captures;
/// <c>version</c>.
/// Exit codes: 0 success, 1 runtime failure, 2 invalid configuration or usage.
/// </summary>
internal static class Program
{
    private static int Main(string[] args) => CreateRootCommand().Parse(args).Invoke();

    /// <summary>The command tree (every command and option).</summary>
    public static RootCommand CreateRootCommand() =>
        new("UserOverlay: a userspace overlay network router (VXLAN over UDP, in the shape of Docker's overlay driver).")
        {
            UpCommand.Create(),
            StatusCommand.Create(),
            MembersCommand.Create(),
            SaCommand.Create(),
            VersionCommand.Create(),
        };
}
