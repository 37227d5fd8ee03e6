using System.Buffers.Binary;
using System.Net.Sockets;
using System.Runtime.InteropServices;
using UserOverlay.Router;

namespace UserOverlay.Cli.Daemon;

/// <summary>The peer of a control-socket connection, from SO_PEERCRED: who connected (as the kernel saw it at connect).</summary>
/// <param name="Pid">The peer's process id.</param>
/// <param name="Uid">Its effective user id.</param>
/// <param name="Gid">Its effective group id.</param>
internal readonly record struct PeerCredentials(int Pid, uint Uid, uint Gid)
{
    private const int SolSocket = 1, SoPeerCred = 17; // <asm-generic/socket.h>

    /// <summary>The credentials of the Unix-socket peer of <paramref name="socket"/> (struct ucred: pid, uid, gid), or null.</summary>
    public static PeerCredentials? Of(Socket? socket)
    {
        if (socket is null || socket.AddressFamily != AddressFamily.Unix) return null;
        Span<byte> ucred = stackalloc byte[12];
        try
        {
            if (socket.GetRawSocketOption(SolSocket, SoPeerCred, ucred) != 12) return null;
        }
        catch (SocketException) { return null; }
        catch (ObjectDisposedException) { return null; }
        return new PeerCredentials(BinaryPrimitives.ReadInt32LittleEndian(ucred), BinaryPrimitives.ReadUInt32LittleEndian(ucred[4..]),
            BinaryPrimitives.ReadUInt32LittleEndian(ucred[8..]));
    }
}

/// <summary>
/// Who may use the control socket, as dockerd's socket does it: the directory /run/useroverlay is 0755, each socket is
/// 0660 root:GROUP (GROUP from <c>up --group</c>; default the group "useroverlay" if it exists, else root), so members of
/// GROUP can connect; what they may do is decided per request from SO_PEERCRED (<see cref="PeerCredentials"/>).
/// </summary>
internal static partial class SocketAccess
{
    /// <summary>The group a socket is given when <c>--group</c> is not: this one if it exists, else root's.</summary>
    public const string DefaultGroup = "useroverlay";

    /// <summary>
    /// The gid of <paramref name="group"/> (a name from /etc/group, or a number); null with the default group missing
    /// (then root's, 0). Throws <see cref="RouterException"/> naming the group when one given is unknown.
    /// </summary>
    public static uint ResolveGroup(string? group)
    {
        if (group is not null && uint.TryParse(group, out uint numeric)) return numeric;
        string name = group ?? DefaultGroup;
        if (LookupGroup(name) is { } gid) return gid;
        if (group is null) return 0;
        throw new RouterException(RouterErrorCode.InvalidOptions,
            $"--group: there is no group '{group}' in /etc/group (create it with `groupadd {group}`, or give another group)");
    }

    private static uint? LookupGroup(string name)
    {
        try
        {
            foreach (string line in File.ReadLines("/etc/group"))
            {
                var parts = line.Split(':');
                if (parts.Length >= 3 && parts[0] == name && uint.TryParse(parts[2], out uint gid)) return gid;
            }
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { }
        return null;
    }

    /// <summary>Gives the socket at <paramref name="path"/> to root:<paramref name="gid"/> with mode 0660.</summary>
    public static void Restrict(string path, uint gid)
    {
        if (chown(path, 0, gid) != 0)
            throw new RouterException(RouterErrorCode.SystemError, $"cannot give the control socket {path} to group {gid}: {Marshal.GetPInvokeErrorMessage(Marshal.GetLastPInvokeError())}");
        File.SetUnixFileMode(path, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.GroupRead | UnixFileMode.GroupWrite);
    }

    [LibraryImport("libc", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int chown(string path, uint owner, uint group);
}
