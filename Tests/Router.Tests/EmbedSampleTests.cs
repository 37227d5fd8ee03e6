using UserOverlay.Testing.Common;

namespace UserOverlay.Router.Tests;

/// <summary>samples/embed runs as README says (no root): two in-process routers, one given its network and endpoint at run time.</summary>
public class EmbedSampleTests
{
    [Fact]
    public void The_embedding_sample_forwards_a_frame_to_an_endpoint_attached_at_run_time_and_detaches_it()
    {
        // The sample is built with the solution, in this test's configuration.
        string configuration = AppContext.BaseDirectory.Contains("/bin/Release/", StringComparison.Ordinal) ? "Release" : "Debug";
        string dll = Path.Combine(Repo.Root, "samples", "embed", "bin", configuration, "net10.0", "useroverlay-embed-sample.dll");
        Assert.True(File.Exists(dll), $"{dll} is missing: build the solution (dotnet test UserOverlay.sln builds it)");
        var r = Shell.Run("dotnet", [dll], TimeSpan.FromSeconds(60));
        Assert.True(r.ExitCode == 0, $"exit {r.ExitCode}\n{r.StdOut}\n{r.StdErr}");
        Assert.Contains("host 2 attached c2 at run time", r.StdOut);
        Assert.Contains("c2 received 60 bytes: \"hello from c1\"", r.StdOut);
        Assert.Contains("remove refused (InUse)", r.StdOut);
        Assert.Contains("removed blue: 0 networks left", r.StdOut);
    }

    [Fact]
    public void The_embedding_sample_runs_each_other_library_on_its_own()
    {
        var r = Shell.Run("dotnet", [SampleDll(), "libraries"], TimeSpan.FromSeconds(60));
        Assert.True(r.ExitCode == 0, $"exit {r.ExitCode}\n{r.StdOut}\n{r.StdErr}");
        Assert.Contains("crypto: 100-byte ESP packet opened: Ok, 64 bytes, key blue", r.StdOut);
        Assert.Matches(@"membership: a sees (a|b) \(Alive\), (a|b) \(Alive\)", r.StdOut);
        Assert.Contains("control: 198.18.0.0/29 gave 5 of 5 addresses: 198.18.0.2, 198.18.0.3, 198.18.0.4, 198.18.0.5, 198.18.0.6", r.StdOut);
        Assert.Contains("cluster: example-cluster issued node-1 (Worker)", r.StdOut);
        Assert.Contains("token parses: True", r.StdOut);
    }

    /// <summary>Every C# block of every package README (docs/packages, packed as the package's README.md) is code of
    /// samples/embed, line for line (indentation aside), so the examples embedders read are ones that compile and run.</summary>
    [Fact]
    public void Every_package_readme_example_is_code_of_the_embedding_sample()
    {
        string samples = string.Join("\n", Directory.GetFiles(Path.Combine(Repo.Root, "samples", "embed"), "*.cs")
            .Select(f => Normalize(File.ReadAllText(f))));
        var readmes = Directory.GetFiles(Path.Combine(Repo.Root, "docs", "packages"), "*.md");
        Assert.NotEmpty(readmes);
        int blocks = 0;
        foreach (string readme in readmes)
        {
            foreach (System.Text.RegularExpressions.Match m in System.Text.RegularExpressions.Regex.Matches(
                File.ReadAllText(readme), "```csharp\n(.*?)```", System.Text.RegularExpressions.RegexOptions.Singleline))
            {
                blocks++;
                Assert.True(samples.Contains(Normalize(m.Groups[1].Value), StringComparison.Ordinal),
                    $"{Path.GetFileName(readme)}: this example is not (any more) code of samples/embed:\n{m.Groups[1].Value}");
            }
        }
        Assert.True(blocks >= readmes.Length, $"{blocks} examples in {readmes.Length} package READMEs: each needs one");
    }

    private static string Normalize(string code) =>
        string.Join("\n", code.Replace("\r", "").Split('\n').Select(l => l.Trim()).Where(l => l.Length > 0));

    private static string SampleDll()
    {
        string configuration = AppContext.BaseDirectory.Contains("/bin/Release/", StringComparison.Ordinal) ? "Release" : "Debug";
        string dll = Path.Combine(Repo.Root, "samples", "embed", "bin", configuration, "net10.0", "useroverlay-embed-sample.dll");
        Assert.True(File.Exists(dll), $"{dll} is missing: build the solution (dotnet test UserOverlay.sln builds it)");
        return dll;
    }
}
