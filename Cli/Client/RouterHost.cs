using System.Net.Sockets;
using UserOverlay.Cli.Daemon;
using UserOverlay.Router;

namespace UserOverlay.Cli.Client;

/// <summary>
/// Which router a client command talks to, as Docker picks its daemon: <c>-H/--host NAME|SOCKET</c>, else the
/// environment variable <see cref="EnvironmentVariable"/>, else the one router running on the machine. A value with
/// a '/' is a socket path; any other is a router name, whose socket is <c>DIRECTORY/NAME.sock</c>.
/// </summary>
public static class RouterHost
{
    /// <summary>The environment variable that names the router when -H is not given (like DOCKER_HOST).</summary>
    public const string EnvironmentVariable = "USEROVERLAY_HOST";

    /// <summary>
    /// The control socket to use. <paramref name="host"/> is the -H value, <paramref name="environment"/> the
    /// variable's, <paramref name="directory"/> where routers put their sockets (<see cref="ControlApi.SocketDirectory"/>;
    /// tests pass their own). Throws <see cref="UsageException"/> for a malformed value and
    /// <see cref="RouterException"/> when no such router runs, saying what to do.
    /// </summary>
    public static string Resolve(string? host, string? environment, string directory)
    {
        if (!string.IsNullOrEmpty(host)) return FromValue(host, "-H", directory);
        if (!string.IsNullOrEmpty(environment)) return FromValue(environment, EnvironmentVariable, directory);
        string[] sockets = Directory.Exists(directory)
            ? [.. Directory.GetFiles(directory, "*.sock").Where(IsCandidate).Order(StringComparer.Ordinal)] // stale sockets of killed routers don't count
            : [];
        return sockets.Length switch
        {
            0 => throw new RouterException(RouterErrorCode.SystemError,
                $"no router is running (no live control socket in {directory}); start one with `useroverlay up --config FILE`, or name one with -H"),
            1 => sockets[0],
            _ => throw new RouterException(RouterErrorCode.SystemError,
                $"several routers are running ({string.Join(", ", sockets.Select(Path.GetFileNameWithoutExtension))}); choose one with -H NAME or {EnvironmentVariable}"),
        };
    }

    /// <summary>The socket the command line and environment of this process select.</summary>
    public static string Resolve(string? host) =>
        Resolve(host, Environment.GetEnvironmentVariable(EnvironmentVariable), ControlApi.SocketDirectory);

    private static string FromValue(string value, string source, string directory)
    {
        if (value.Contains('/'))
        {
            if (!File.Exists(value))
                throw new RouterException(RouterErrorCode.SystemError, $"no control socket at {value} (given by {source})");
            return value;
        }
        if (!ControlApi.IsValidName(value))
            throw new UsageException($"{source}: '{TextTable.Printable(value)}' is neither a router name (letters, digits, '-', '_', '.') nor a socket path (one with a '/')");
        string path = Path.Combine(directory, value + ".sock");
        if (!File.Exists(path))
            throw new RouterException(RouterErrorCode.SystemError, $"no router named '{value}' is running (no control socket {path})");
        return path;
    }

    /// <summary>
    /// True when something listens on the socket, or when it refuses this user (a non-root caller cannot tell
    /// more; the request then says to run as root).
    /// </summary>
    private static bool IsCandidate(string path)
    {
        try
        {
            using var s = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
            s.Connect(new UnixDomainSocketEndPoint(path));
            return true;
        }
        catch (SocketException e)
        {
            return e.SocketErrorCode == SocketError.AccessDenied;
        }
    }
}
