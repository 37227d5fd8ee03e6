using System.Runtime.InteropServices;
using UserOverlay.Router.Linux;

namespace UserOverlay.Router.Netns;

/// <summary>Network-namespace helpers: resolving names and running code inside a namespace.</summary>
public static partial class Namespaces
{
    /// <summary>Directory where <c>ip netns</c> keeps its named namespaces.</summary>
    public const string NetnsDirectory = "/run/netns";

    /// <summary>
    /// Resolves an <c>ip netns</c> name (a bare name) to /run/netns/NAME; anything containing a '/'
    /// (such as /proc/1234/ns/net) is taken as a path.
    /// </summary>
    public static string ResolvePath(string netns) => netns.Contains('/') ? netns : Path.Combine(NetnsDirectory, netns);

    /// <summary>True when the namespace exists.</summary>
    public static bool Exists(string netns) => File.Exists(ResolvePath(netns));

    /// <summary>
    /// Runs <paramref name="action"/> on a fresh thread that has entered the network namespace
    /// <paramref name="netns"/> with setns(2); sockets and devices it opens belong to that namespace
    /// and stay there after the thread returns. The calling thread's namespace never changes.
    /// </summary>
    public static T RunIn<T>(string netns, Func<T> action)
    {
        string path = ResolvePath(netns);
        if (!File.Exists(path))
            throw new RouterException(RouterErrorCode.NamespaceNotFound,
                netns.Contains('/') ? $"network namespace {path} does not exist"
                                    : $"network namespace '{netns}' does not exist (no {path}; create it with `ip netns add {netns}`)");
        T? result = default;
        Exception? error = null;
        var thread = new Thread(() =>
        {
            try { result = RunOnThisThread(path, netns, action); }
            catch (Exception e) { error = e; }
        })
        { Name = "useroverlay-netns", IsBackground = true };
        thread.Start();
        thread.Join();
        if (error is not null) System.Runtime.ExceptionServices.ExceptionDispatchInfo.Throw(error);
        return result!;
    }

    private static T RunOnThisThread<T>(string path, string netns, Func<T> action)
    {
        int self = Interop.Libc.open("/proc/thread-self/ns/net", Interop.O_RDONLY | Interop.O_CLOEXEC);
        if (self < 0) throw SystemError("open /proc/thread-self/ns/net");
        int target = Interop.Libc.open(path, Interop.O_RDONLY | Interop.O_CLOEXEC);
        if (target < 0)
        {
            int errno = System.Runtime.InteropServices.Marshal.GetLastPInvokeError();
            Interop.Libc.close(self);
            throw errno == Interop.EACCES || errno == Interop.EPERM
                ? new RouterException(RouterErrorCode.PermissionDenied, $"cannot open network namespace {path}: permission denied (run as root)")
                : new RouterException(RouterErrorCode.NamespaceNotFound, $"cannot open network namespace '{netns}' ({path}): {Interop.ErrorText(errno)}");
        }
        try
        {
            if (Interop.Libc.setns(target, Interop.CLONE_NEWNET) != 0)
            {
                int errno = System.Runtime.InteropServices.Marshal.GetLastPInvokeError();
                throw errno == Interop.EPERM
                    ? new RouterException(RouterErrorCode.PermissionDenied, $"cannot enter network namespace '{netns}': permission denied (useroverlay needs root, or CAP_SYS_ADMIN and CAP_NET_ADMIN)")
                    : new RouterException(RouterErrorCode.NamespaceNotFound, $"'{netns}' ({path}) is not a network namespace: {Interop.ErrorText(errno)}");
            }
            try
            {
                return action();
            }
            finally
            {
                Interop.Libc.setns(self, Interop.CLONE_NEWNET);
            }
        }
        finally
        {
            Interop.Libc.close(target);
            Interop.Libc.close(self);
        }
    }

    /// <summary>
    /// Creates a named network namespace as <c>ip netns add NAME</c> does — a new namespace bind-mounted on
    /// /run/netns/NAME, so <c>ip netns exec</c> and <see cref="RunIn{T}"/> find it — with its loopback up, and returns
    /// its path. Throws <see cref="RouterException"/> when the name is taken or the system refuses; nothing is left
    /// behind on failure. Simplification: /run/netns is not made a shared mount (as ip does on first use), so a
    /// process in another mount namespace sees the new namespace only if /run/netns already propagates there.
    /// </summary>
    public static string Create(string name)
    {
        if (name.Length is 0 or > 200 || name.Contains('/') || name is "." or "..")
            throw new RouterException(RouterErrorCode.InvalidOptions, $"'{name}' is not a usable namespace name");
        Directory.CreateDirectory(NetnsDirectory, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute
            | UnixFileMode.GroupRead | UnixFileMode.GroupExecute | UnixFileMode.OtherRead | UnixFileMode.OtherExecute);
        string path = ResolvePath(name);
        try
        {
            using (new FileStream(path, new FileStreamOptions { Mode = FileMode.CreateNew, Access = FileAccess.Write, UnixCreateMode = UnixFileMode.None })) { }
        }
        catch (IOException) when (File.Exists(path))
        {
            throw new RouterException(RouterErrorCode.InterfaceExists, $"a network namespace named '{name}' already exists ({path})");
        }
        Exception? error = null;
        var thread = new Thread(() =>
        {
            try
            {
                if (unshare(Interop.CLONE_NEWNET) != 0) throw SystemError("unshare(CLONE_NEWNET)");
                if (mount("/proc/thread-self/ns/net", path, "none", MsBind, 0) != 0) throw SystemError($"bind-mount the new namespace on {path}");
                using var nl = new Rtnetlink();
                nl.SetLinkUp(Rtnetlink.IndexOf("lo"), "lo");
            }
            catch (Exception e) { error = e; }
        })
        { Name = "useroverlay-netns-add", IsBackground = true };
        thread.Start();
        thread.Join();
        if (error is not null)
        {
            Delete(name);
            System.Runtime.ExceptionServices.ExceptionDispatchInfo.Throw(error);
        }
        return path;
    }

    /// <summary>Sets the loopback interface of <paramref name="netns"/> up (a namespace <c>ip netns add</c> made has it down).</summary>
    public static void SetLoopbackUp(string netns) => RunIn(netns, () =>
    {
        using var nl = new Rtnetlink();
        nl.SetLinkUp(Rtnetlink.IndexOf("lo"), "lo");
        return 0;
    });

    /// <summary>Deletes a namespace <see cref="Create"/> made (as <c>ip netns del</c>): lazily unmounts and removes /run/netns/NAME. False when it did not exist.</summary>
    public static bool Delete(string name)
    {
        string path = ResolvePath(name);
        if (!File.Exists(path)) return false;
        umount2(path, MntDetach); // fails harmlessly when nothing is mounted there (a half-made namespace)
        File.Delete(path);
        return true;
    }

    private const ulong MsBind = 0x1000;
    private const int MntDetach = 2;

    [LibraryImport("libc", SetLastError = true)]
    private static partial int unshare(int flags);

    [LibraryImport("libc", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int mount(string source, string target, string fstype, ulong flags, nint data);

    [LibraryImport("libc", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int umount2(string target, int flags);

    internal static RouterException SystemError(string what)
    {
        int errno = System.Runtime.InteropServices.Marshal.GetLastPInvokeError();
        return new RouterException(RouterErrorCode.SystemError, $"{what}: {Interop.ErrorText(errno)}");
    }
}
