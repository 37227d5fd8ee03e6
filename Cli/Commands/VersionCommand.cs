using System.CommandLine;
using System.CommandLine.Invocation;
using System.Reflection;

namespace UserOverlay.Cli.Commands;

/// <summary><c>useroverlay version</c> and <c>useroverlay --version</c>: both print <see cref="Line"/>.</summary>
internal static class VersionCommand
{
    /// <summary>This build's version: the package version (VersionPrefix[-VersionSuffix], Directory.Build.props),
    /// the informational version without its "+commit".</summary>
    public static string Current =>
        typeof(VersionCommand).Assembly.GetCustomAttribute<AssemblyInformationalVersionAttribute>()?.InformationalVersion.Split('+')[0] ?? "0.0.0";

    /// <summary>What both forms print: "useroverlay 0.1.0 (.NET 10.0.1)".</summary>
    public static string Line => $"useroverlay {Current} (.NET {Environment.Version})";

    public static Command Create()
    {
        var cmd = new Command("version", "Print the version.");
        cmd.SetAction(parse =>
        {
            parse.InvocationConfiguration.Output.WriteLine(Line);
            return ExitCodes.Ok;
        });
        return cmd;
    }

    /// <summary>Makes the root's <c>--version</c> print the same line as <c>version</c> (System.CommandLine's own prints
    /// the informational version with the commit).</summary>
    public static RootCommand WithVersionOption(this RootCommand root)
    {
        foreach (var option in root.Options.OfType<VersionOption>()) option.Action = new PrintVersion();
        return root;
    }

    private sealed class PrintVersion : SynchronousCommandLineAction
    {
        public override int Invoke(ParseResult parseResult)
        {
            parseResult.InvocationConfiguration.Output.WriteLine(Line);
            return ExitCodes.Ok;
        }
    }
}
