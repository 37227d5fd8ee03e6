namespace UserOverlay.Cli.Tests;

/// <summary>One in-process run of the CLI (Program.Run) with its output captured.</summary>
public sealed record CliRun(int ExitCode, string Out, string Err)
{
    public static CliRun Of(params string[] args)
    {
        var o = new StringWriter();
        var e = new StringWriter();
        int code = Program.Run(args, o, e);
        return new CliRun(code, o.ToString(), e.ToString());
    }

    /// <summary>Asserts a failure with <paramref name="exitCode"/> reported as one line "useroverlay: …" and no stack trace.</summary>
    public CliRun FailsWithOneSentence(int exitCode, string contains)
    {
        Assert.True(ExitCode == exitCode, $"exit {ExitCode}, expected {exitCode}; stderr: {Err}");
        string line = Assert.Single(Err.Split('\n', StringSplitOptions.RemoveEmptyEntries));
        Assert.StartsWith("useroverlay: ", line);
        Assert.Contains(contains, line);
        Assert.DoesNotContain("   at ", Err);
        return this;
    }
}
