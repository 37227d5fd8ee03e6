using System.CommandLine;

namespace UserOverlay.Cli.Client;

/// <summary>
/// <c>-H/--host NAME|SOCKET</c> on a client command (see <see cref="RouterHost"/>), and on the commands that had it
/// before -H existed (status, members, sa) the old <c>--name/-n</c>, hidden, as an alias.
/// </summary>
public sealed class HostOption
{
    private readonly Option<string?> _host;
    private readonly Option<string?>? _legacyName;

    private HostOption(Command command, bool legacyName, bool recursive)
    {
        _host = new Option<string?>("--host", "-H")
        {
            Description = $"The router: its name (socket /run/useroverlay/NAME.sock) or a socket path. Default: ${RouterHost.EnvironmentVariable}, else the only router running.",
            HelpName = "NAME|SOCKET",
            Recursive = recursive,
        };
        command.Add(_host);
        if (legacyName)
        {
            _legacyName = new Option<string?>("--name", "-n") { Description = "Same as -H (kept for scripts).", Hidden = true };
            command.Add(_legacyName);
        }
    }

    /// <summary>Adds -H to <paramref name="command"/>; <paramref name="recursive"/> for a group (`network -H x ls` and `network ls -H x`).</summary>
    public static HostOption AddTo(Command command, bool legacyName = false, bool recursive = false) => new(command, legacyName, recursive);

    /// <summary>The router the user named on the command line, or null.</summary>
    public string? Value(ParseResult p)
    {
        string? host = p.GetValue(_host), name = _legacyName is null ? null : p.GetValue(_legacyName);
        if (host is not null && name is not null && host != name)
            throw new UsageException($"-H {host} and --name {name} name different routers; give one (--name is the old spelling of -H)");
        return host ?? name;
    }
}
