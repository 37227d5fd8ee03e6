using System.Text.RegularExpressions;
using System.Xml.Linq;
using UserOverlay.Cli.Commands;
using UserOverlay.Testing.Common;

namespace UserOverlay.Cli.Tests;

/// <summary>`useroverlay version` and `--version` print the version set in one place (Directory.Build.props).</summary>
public sealed class VersionTests
{
    [Fact]
    public void Version_and_dash_dash_version_print_the_same_line_with_the_props_version()
    {
        var props = XDocument.Load(Path.Combine(Repo.Root, "Directory.Build.props"));
        string prefix = props.Descendants("VersionPrefix").Single().Value;

        var command = CliRun.Of("version");
        var option = CliRun.Of("--version");

        Assert.Equal(0, command.ExitCode);
        Assert.Equal(0, option.ExitCode);
        Assert.Equal(command.Out, option.Out);
        // "useroverlay 0.1.0 (.NET 10.0.1)" or, with a suffix, "useroverlay 0.1.0-ci.5 (.NET …)"; never the "+commit".
        Assert.Matches(new Regex($@"^useroverlay {Regex.Escape(prefix)}(-[0-9A-Za-z.-]+)? \(\.NET [0-9.]+\)\n$"), command.Out);
        Assert.StartsWith(prefix, VersionCommand.Current, StringComparison.Ordinal);
    }
}
