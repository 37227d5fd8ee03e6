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
}
