using System.Net;
using System.Net.Sockets;
using System.Runtime.InteropServices;

namespace UserOverlay.Testing.Common;

/// <summary>
/// Creates sockets inside a network namespace from the test process itself: a thread enters the
/// namespace with setns(2), creates the socket and leaves; the socket stays in that namespace.
/// So tests send real traffic between namespaces without extra tools.
/// </summary>
public static partial class NetnsSockets
{
    [LibraryImport("libc", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int open(string path, int flags);

    [LibraryImport("libc", SetLastError = true)]
    private static partial int setns(int fd, int nstype);

    [LibraryImport("libc")]
    private static partial int close(int fd);

    [LibraryImport("libc", SetLastError = true)]
    private static partial int socket(int domain, int type, int protocol);

    /// <summary>A raw IPv4 socket of IP protocol <paramref name="protocol"/> (e.g. 50, ESP) in <paramref name="ns"/>: receives copies with the IPv4 header, sends without.</summary>
    public static Socket Raw(string ns, int protocol) => In(ns, () =>
    {
        int fd = socket(2, 3 | 0x80000, protocol); // AF_INET, SOCK_RAW | SOCK_CLOEXEC (.NET maps no ProtocolType 50)
        if (fd < 0) throw new InvalidOperationException($"socket(AF_INET, SOCK_RAW, {protocol}) failed: errno {Marshal.GetLastPInvokeError()}");
        return new Socket(new SafeSocketHandle((IntPtr)fd, ownsHandle: true));
    });

    /// <summary>Runs <paramref name="create"/> on a thread inside namespace <paramref name="ns"/> (an ip-netns name).</summary>
    public static T In<T>(string ns, Func<T> create)
    {
        T? result = default;
        Exception? error = null;
        var t = new Thread(() =>
        {
            int self = open("/proc/thread-self/ns/net", 0x80000);
            int target = open("/run/netns/" + ns, 0x80000);
            try
            {
                if (self < 0 || target < 0) throw new InvalidOperationException($"cannot open namespace {ns}");
                if (setns(target, 0x40000000) != 0) throw new InvalidOperationException($"setns({ns}) failed: errno {Marshal.GetLastPInvokeError()}");
                try { result = create(); }
                finally { setns(self, 0x40000000); }
            }
            catch (Exception e) { error = e; }
            finally
            {
                if (target >= 0) close(target);
                if (self >= 0) close(self);
            }
        });
        t.Start();
        t.Join();
        if (error is not null) throw new InvalidOperationException($"in namespace {ns}: {error.Message}", error);
        return result!;
    }

    /// <summary>A UDP socket in <paramref name="ns"/>, bound to <paramref name="bind"/> (port 0 = any).</summary>
    public static Socket Udp(string ns, IPEndPoint bind) => In(ns, () =>
    {
        var s = new Socket(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp);
        s.Bind(bind);
        return s;
    });

    /// <summary>A TCP listener in <paramref name="ns"/> on <paramref name="bind"/>.</summary>
    public static TcpListener TcpListener(string ns, IPEndPoint bind) => In(ns, () =>
    {
        var l = new TcpListener(bind);
        l.Start();
        return l;
    });

    /// <summary>An unconnected TCP socket created in <paramref name="ns"/>.</summary>
    public static Socket TcpSocket(string ns) => In(ns, () => new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp));
}
