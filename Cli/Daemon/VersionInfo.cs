namespace UserOverlay.Cli.Daemon;

/// <summary>Version information of a running daemon.</summary>
public sealed record VersionInfo(string Version, string Name, int Pid, string Config);
