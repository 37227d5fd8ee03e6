using UserOverlay.Router.Linux;

namespace UserOverlay.Router.Netns;

/// <summary>Network-namespace helpers: resolving names and running code inside a namespace.</summary>
public static class Namespaces
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

    internal static RouterException SystemError(string what)
    {
        int errno = System.Runtime.InteropServices.Marshal.GetLastPInvokeError();
        return new RouterException(RouterErrorCode.SystemError, $"{what}: {Interop.ErrorText(errno)}");
    }
}
