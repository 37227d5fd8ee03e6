using UserOverlay.Cli.Config;
using UserOverlay.Router;

namespace UserOverlay.Cli.Commands;

/// <summary>Exit codes, and the printing of errors, shared by the commands.</summary>
internal static class ExitCodes
{
    public const int Ok = 0, Failure = 1, Usage = 2;

    /// <summary>Prints a user-facing error (no stack trace) and returns the exit code it deserves.</summary>
    public static int Report(Exception e)
    {
        switch (e)
        {
            case ConfigException ce:
                Console.Error.WriteLine($"useroverlay: the configuration has {ce.Errors.Count} error(s):");
                foreach (var err in ce.Errors) Console.Error.WriteLine("  " + err);
                return Usage;
            case RouterOptionsException oe:
                Console.Error.WriteLine("useroverlay: " + oe.Message);
                return Usage;
            case RouterException re:
                Console.Error.WriteLine("useroverlay: " + re.Message);
                return Failure;
            default:
                Console.Error.WriteLine("useroverlay: unexpected error: " + e);
                return Failure;
        }
    }
}
