namespace UserOverlay.Cli.Daemon;

/// <summary>An API error: a stable code and a message.</summary>
public sealed record ApiError(string Code, string Message);
