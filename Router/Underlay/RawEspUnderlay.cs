using System.Runtime.InteropServices;
using UserOverlay.Router.Linux;

namespace UserOverlay.Router.Underlay;

/// <summary>
/// ESP in transport mode (IP protocol 50): a raw socket that receives and a send-only IPPROTO_RAW socket that sends
/// (see <see cref="Open"/> for why two). Driven as <see cref="SocketUnderlay"/> describes; received packets start at the SPI.
/// </summary>
internal sealed class RawEspUnderlay : SocketUnderlay
{
    private RawEspUnderlay(SafeFdHandle handle, VtepEndpoint local, int batch, SafeFdHandle send)
        : base(handle, local with { Port = 0 }, batch, stripIpHeader: true, sendHandle: send) { }

    /// <summary>
    /// Opens ESP in transport mode on <paramref name="local"/>'s address (the port is not used): a raw IPPROTO_ESP
    /// socket that receives, and a send-only IPPROTO_RAW socket (IP_HDRINCL) that sends. Why two: the kernel sends a
    /// header-included datagram with one plain copy, where a protocol-50 socket builds each packet through
    /// ip_append_data and checksums the payload while copying it; and a socket that is not in the worker's epoll set
    /// wakes nobody when the kernel frees what it sent (a socket in epoll runs the epoll callback for every sent
    /// packet). Together that is about a tenth of the sending host's CPU per packet on the 2-core test machine.
    /// </summary>
    /// <param name="local">The address to send from and receive on.</param>
    /// <param name="batchSize">Datagrams per receive.</param>
    /// <param name="queue">This worker's queue, of <paramref name="queues"/>. Every raw socket of a protocol receives its
    /// own copy of each packet, so with several queues each socket gets a filter that keeps only the packets steered to
    /// its queue — the CPU the packet arrived on, or the next one for bulk data and a flood's excess, as the VXLAN socket group does
    /// (<see cref="RawEspSteering.AttachQueueFilter"/>).</param>
    /// <param name="queues">Queues in all.</param>
    public static RawEspUnderlay Open(VtepEndpoint local, int batchSize, int queue = 0, int queues = 1)
    {
        SafeFdHandle handle = OpenRaw(Interop.IPPROTO_ESP, local);
        SafeFdHandle? send = null;
        try
        {
            if (queues > 1 && !RawEspSteering.AttachQueueFilter(handle.Fd, queue, queues))
                throw Netns.Namespaces.SystemError("setsockopt(SO_ATTACH_FILTER) on the raw ESP socket");
            send = OpenRaw(Interop.IPPROTO_RAW, local);
            return new RawEspUnderlay(handle, local, batchSize, send);
        }
        catch
        {
            send?.Dispose();
            handle.Dispose();
            throw;
        }
    }

    private static SafeFdHandle OpenRaw(int protocol, VtepEndpoint local)
    {
        int fd = Interop.Libc.socket(Interop.AF_INET, Interop.SOCK_RAW | Interop.SOCK_CLOEXEC | Interop.SOCK_NONBLOCK, protocol);
        string what = protocol == Interop.IPPROTO_ESP ? "a raw ESP socket (IP protocol 50)" : "a raw IP socket to send ESP";
        if (fd < 0)
        {
            int errno = Marshal.GetLastPInvokeError();
            throw errno is Interop.EPERM or Interop.EACCES
                ? new RouterException(RouterErrorCode.PermissionDenied, $"cannot open {what}: permission denied (needs root or CAP_NET_RAW); `esp: udp` avoids raw sockets")
                : new RouterException(RouterErrorCode.SystemError, $"cannot open {what}: {Interop.ErrorText(errno)}");
        }
        var handle = new SafeFdHandle(fd);
        if (!SetBuffersAndBind(fd, local with { Port = 0 }))
        {
            int errno = Marshal.GetLastPInvokeError();
            handle.Dispose();
            throw errno == Interop.EADDRNOTAVAIL
                ? new RouterException(RouterErrorCode.AddressNotAvailable, $"cannot bind the ESP socket to {local.IPAddress}: not an address of any interface in this network namespace")
                : new RouterException(RouterErrorCode.SystemError, $"cannot bind the ESP socket to {local.IPAddress}: {Interop.ErrorText(errno)}");
        }
        return handle;
    }
}
