namespace UserOverlay.Cli.Config;

/// <summary>Raised when a configuration file has errors; <see cref="Errors"/> lists every one.</summary>
public sealed class ConfigException(IReadOnlyList<ConfigError> errors)
    : Exception(string.Join(Environment.NewLine, errors))
{
    public IReadOnlyList<ConfigError> Errors { get; } = errors;
}
