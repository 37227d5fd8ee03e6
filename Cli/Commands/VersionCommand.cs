using System.CommandLine;

namespace UserOverlay.Cli.Commands;

/// <summary><c>useroverlay version</c>.</summary>
internal static class VersionCommand
{
    public static Command Create()
    {
        var cmd = new Command("version", "Print the version.");
        cmd.SetAction(_ =>
        {
            Console.WriteLine($"useroverlay {ExitCodes.Version} (.NET {Environment.Version})");
            return ExitCodes.Ok;
        });
        return cmd;
    }
}
