using UserOverlay.Router;

namespace UserOverlay.Cli.Daemon;

/// <summary>
/// The control socket's API, shaped like Docker's daemon API: HTTP/1.1 + JSON over a Unix socket
/// under /run/useroverlay/ (directory mode 0700). Versioned paths so it can grow:
/// <list type="bullet">
/// <item><c>GET /_ping</c> → "OK"</item>
/// <item><c>GET /v1/version</c> → <see cref="VersionInfo"/></item>
/// <item><c>GET /v1/status</c> → <see cref="RouterStatus"/></item>
/// <item><c>GET /v1/sa</c> → <see cref="SaResponse"/> (encrypted networks only; contains keys)</item>
/// <item><c>GET /v1/members</c> → <see cref="UserOverlay.Control.Gossip.MembersResponse"/> (gossip mode; otherwise 503 with code "gossip_disabled")</item>
/// </list>
/// Errors are <see cref="ApiError"/>: a stable code and a sentence a person can act on.
/// </summary>
public static class ControlApi
{
    /// <summary>Directory of the control sockets.</summary>
    public const string SocketDirectory = "/run/useroverlay";

    /// <summary>Path of the socket of the router named <paramref name="name"/>.</summary>
    public static string SocketPath(string name) => Path.Combine(SocketDirectory, name + ".sock");

    /// <summary>True when <paramref name="name"/> is usable as a router name (and so as a file name).</summary>
    public static bool IsValidName(string name) =>
        name.Length is > 0 and <= 64 && name.All(c => char.IsAsciiLetterOrDigit(c) || c is '-' or '_' or '.') && name[0] != '.';
}
