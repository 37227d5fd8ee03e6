using System.Text.Json;
using UserOverlay.Cli.Client;
using UserOverlay.Cli.Config;
using UserOverlay.Control.Networks;
using UserOverlay.Router;

namespace UserOverlay.Cli.Commands;

/// <summary>Exit codes, and the printing of errors, shared by the commands.</summary>
internal static class ExitCodes
{
    public const int Ok = 0, Failure = 1, Usage = 2;

    /// <summary>Prints a user-facing error (no stack trace) to stderr and returns the exit code it deserves.</summary>
    public static int Report(Exception e) => Report(e, Console.Error);

    /// <summary>Prints a user-facing error (no stack trace) to <paramref name="error"/> and returns the exit code it deserves.</summary>
    public static int Report(Exception e, TextWriter error)
    {
        switch (e)
        {
            case ConfigException ce:
                error.WriteLine($"useroverlay: the configuration has {ce.Errors.Count} error(s):");
                foreach (var err in ce.Errors) error.WriteLine("  " + err);
                return Usage;
            case RouterOptionsException or UsageException:
                error.WriteLine("useroverlay: " + e.Message);
                return Usage;
            case RouterException or ControlException: // the daemon's own sentences (DaemonErrorException) included
                error.WriteLine("useroverlay: " + e.Message);
                return Failure;
            case JsonException or InvalidDataException:
                error.WriteLine("useroverlay: the router's answer cannot be read by this client (" + e.Message + "); are the router and the CLI the same version?");
                return Failure;
            default:
                error.WriteLine("useroverlay: unexpected error: " + e);
                return Failure;
        }
    }
}
