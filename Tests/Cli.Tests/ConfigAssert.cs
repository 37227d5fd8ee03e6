using UserOverlay.Cli.Config;

namespace UserOverlay.Cli.Tests;

/// <summary>What every configuration error must say: the file, the line and the field, in one printable line.</summary>
internal static class ConfigAssert
{
    /// <summary>Asserts that <paramref name="errors"/> holds one at <paramref name="path"/> on <paramref name="line"/> of host.yaml, with a message.</summary>
    public static void ErrorAt(IReadOnlyList<ConfigError> errors, string what, int line, string path)
    {
        var e = errors.FirstOrDefault(x => x.Path == path);
        Assert.True(e is not null, $"{what}: expected an error at {path}, got: {string.Join(" | ", errors)}");
        Assert.Equal("host.yaml", e!.File);
        Assert.True(line == e.Line, $"{what}: line {e.Line}, expected {line}: {e}");
        Assert.False(string.IsNullOrWhiteSpace(e.Message));
        Assert.StartsWith($"host.yaml:{line}:", e.ToString());
    }
}
