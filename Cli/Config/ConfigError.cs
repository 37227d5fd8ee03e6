namespace UserOverlay.Cli.Config;

/// <summary>A configuration problem: where (file, line, column, field path) and what.</summary>
public sealed record ConfigError(string File, int Line, int Column, string Path, string Message)
{
    public override string ToString() =>
        Line > 0 ? $"{File}:{Line}:{Column}: {Path}: {Message}" : $"{File}: {Path}: {Message}";
}
