using System.CommandLine;

namespace UserOverlay.Cli.Commands;

/// <summary><c>useroverlay version</c>.</summary>
internal static class VersionCommand
{
    /// <summary>This build's version (the informational version without the commit).</summary>
    public static string Current =>
        typeof(VersionCommand).Assembly.GetCustomAttributes(typeof(System.Reflection.AssemblyInformationalVersionAttribute), false)
            .OfType<System.Reflection.AssemblyInformationalVersionAttribute>().FirstOrDefault()?.InformationalVersion.Split('+')[0] ?? "0.0.0";

    public static Command Create()
    {
        var cmd = new Command("version", "Print the version.");
        cmd.SetAction(_ =>
        {
            Console.WriteLine($"useroverlay {Current} (.NET {Environment.Version})");
            return ExitCodes.Ok;
        });
        return cmd;
    }
}
