using System.CommandLine;
using UserOverlay.Cli.Commands;

[assembly: System.Runtime.Versioning.SupportedOSPlatform("linux")]

namespace UserOverlay.Cli;

/// <summary>
/// The <c>useroverlay</c> binary. Commands:
/// <c>up --config FILE [--name NAME]</c> runs one host's router in the foreground;
/// <c>status [--name NAME] [--json]</c> asks a running router over its control socket;
/// <c>members [--name NAME] [--json]</c> lists its gossip cluster (gossip mode);
/// <c>sa (--config FILE | --name NAME) [--json]</c> prints the ESP SAs (with keys) for decrypting captures;
/// <c>version</c>.
/// Exit codes: 0 success, 1 runtime failure, 2 invalid configuration or usage.
/// </summary>
internal static class Program
{
    private static int Main(string[] args)
    {
        var root = new RootCommand("UserOverlay: a userspace overlay network router (VXLAN over UDP, in the shape of Docker's overlay driver).")
        {
            UpCommand.Create(),
            StatusCommand.Create(),
            MembersCommand.Create(),
            SaCommand.Create(),
            VersionCommand.Create(),
        };
        return root.Parse(args).Invoke();
    }
}
