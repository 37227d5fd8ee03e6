using System.Runtime.InteropServices;
using UserOverlay.Router.Netns;

namespace UserOverlay.Router.Tap;

/// <summary>
/// A TAP device (IFF_TAP | IFF_NO_PI) created inside an endpoint's network namespace: the
/// /dev/net/tun file descriptor is opened by a thread that has entered the namespace, so the
/// device is born there, while the router itself stays in the host's namespace. The device is
/// not persistent: closing the descriptor (Dispose, or the process exiting) removes it.
/// Read: one pipeline thread at a time. Write: any thread (each write(2) is one whole frame).
/// Dispose only after the pipeline has stopped using the device.
/// </summary>
internal sealed unsafe class LinuxTap : ITapDevice
{
    private const nuint TUNSETIFF = 0x400454ca;
    private const short IFF_TAP = 0x0002, IFF_NO_PI = 0x1000;
    private const ushort IFF_TUN_EXCL = 0x8000;

    private readonly SafeFdHandle _handle;
    private readonly int _fd; // hot path uses the raw descriptor; _handle owns it (see the Dispose contract)

    private LinuxTap(SafeFdHandle handle, string name)
    {
        _handle = handle;
        _fd = handle.Fd;
        Name = name;
    }

    public string Name { get; }

    public SafeHandle ReadinessHandle => _handle;

    /// <summary>Creates the device in <c>request.Netns</c> and configures MAC, MTU, address and link up over rtnetlink.</summary>
    public static LinuxTap Create(TapRequest request)
    {
        if (!File.Exists("/dev/net/tun"))
            throw new RouterException(RouterErrorCode.TunUnavailable,
                "/dev/net/tun does not exist: load the TUN/TAP driver (modprobe tun) or create the node (mkdir -p /dev/net && mknod /dev/net/tun c 10 200)");
        return Namespaces.RunIn(request.Netns, () => CreateHere(request));
    }

    private static LinuxTap CreateHere(TapRequest r)
    {
        string where = $"interface {r.Name} in namespace '{r.Netns}'";
        int fd = Interop.Libc.open("/dev/net/tun", Interop.O_RDWR | Interop.O_NONBLOCK | Interop.O_CLOEXEC);
        if (fd < 0)
        {
            int errno = Marshal.GetLastPInvokeError();
            throw errno is Interop.EACCES or Interop.EPERM
                ? new RouterException(RouterErrorCode.PermissionDenied, "cannot open /dev/net/tun: permission denied (useroverlay needs root or CAP_NET_ADMIN)")
                : new RouterException(RouterErrorCode.TunUnavailable, $"cannot open /dev/net/tun: {Interop.ErrorText(errno)}");
        }
        var handle = new SafeFdHandle(fd);
        try
        {
            byte* ifr = stackalloc byte[40]; // struct ifreq: char name[16]; short flags; …
            new Span<byte>(ifr, 40).Clear();
            System.Text.Encoding.ASCII.GetBytes(r.Name, new Span<byte>(ifr, 15));
            *(ushort*)(ifr + 16) = (ushort)(IFF_TAP | IFF_NO_PI) | IFF_TUN_EXCL;
            if (Interop.Libc.ioctl(fd, TUNSETIFF, ifr) != 0)
            {
                int errno = Marshal.GetLastPInvokeError();
                throw errno switch
                {
                    Interop.EBUSY or Interop.EINVAL or Interop.EEXIST => new RouterException(RouterErrorCode.InterfaceExists,
                        $"cannot create {where}: an interface with that name already exists there (choose another `interface:` or remove it)"),
                    Interop.EPERM => new RouterException(RouterErrorCode.PermissionDenied, $"cannot create {where}: permission denied (needs CAP_NET_ADMIN)"),
                    _ => new RouterException(RouterErrorCode.SystemError, $"cannot create {where}: TUNSETIFF: {Interop.ErrorText(errno)}"),
                };
            }
            using var nl = new Rtnetlink();
            int index = Rtnetlink.IndexOf(r.Name);
            nl.SetLinkAddressAndMtu(index, r.Mac, r.Mtu, $"set MAC {r.Mac} and MTU {r.Mtu} on {where}");
            nl.AddIPv4Address(index, r.Address, r.PrefixLength, $"add address {VtepEndpoint.FormatAddress(r.Address)}/{r.PrefixLength} to {where}");
            nl.SetLinkUp(index, $"set {where} up");
            return new LinuxTap(handle, r.Name);
        }
        catch
        {
            handle.Dispose();
            throw;
        }
    }

    public int Read(ReadOnlySpan<PacketBuffer> bufs, Span<int> sizes, int offset)
    {
        int count = 0;
        while (count < bufs.Length)
        {
            PacketBuffer b = bufs[count];
            nint n = Interop.Libc.read(_fd, b.Pointer + offset, b.Capacity - offset);
            if (n < 0)
            {
                int errno = Marshal.GetLastPInvokeError();
                if (errno == Interop.EINTR) continue;
                break; // EAGAIN: drained; anything else (device gone): report what we have
            }
            if (n == 0) break;
            sizes[count++] = (int)n;
        }
        return count;
    }

    public bool Write(ReadOnlySpan<byte> frame)
    {
        fixed (byte* p = frame)
        {
            while (true)
            {
                nint n = Interop.Libc.write(_fd, p, frame.Length);
                if (n == frame.Length) return true;
                if (n < 0 && Marshal.GetLastPInvokeError() == Interop.EINTR) continue;
                return false;
            }
        }
    }

    public void Dispose() => _handle.Dispose();
}
