namespace UserOverlay.Cli.Client;

/// <summary>The command line asks for something impossible (a missing command, a bad host name): exit 2, one sentence.</summary>
public sealed class UsageException(string message) : Exception(message);
