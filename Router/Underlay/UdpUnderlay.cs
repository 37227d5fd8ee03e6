using System.Runtime.InteropServices;
using UserOverlay.Router.Linux;

namespace UserOverlay.Router.Underlay;

/// <summary>
/// The VXLAN socket: one non-blocking UDP socket bound to this host's VTEP address and data port, with UDP GRO when the
/// kernel has it (see <see cref="SocketUnderlay"/> for how it is driven). At port 4500 it serves ESP-in-UDP (RFC 3948).
/// Several queues form an SO_REUSEPORT group steered by CPU (<see cref="ReusePortSteering"/>).
/// </summary>
internal sealed unsafe class UdpUnderlay : SocketUnderlay
{
    private UdpUnderlay(SafeFdHandle handle, VtepEndpoint local, int batch, bool segmentation)
        : base(handle, local, batch, segmentation: segmentation) { }

    /// <summary>Opens and binds the socket; failures become a <see cref="RouterException"/> with one clear sentence.</summary>
    public static UdpUnderlay Open(VtepEndpoint local, int batchSize) => Open(local, batchSize, 0, 1);

    /// <summary>
    /// Opens socket <paramref name="queue"/> of a group of <paramref name="queues"/> on one address and port
    /// (SO_REUSEPORT; open them in queue order). Queue 0 first makes sure nobody else holds the port (a plain bind,
    /// closed again), so a second router still gets "port in use" rather than a share of the traffic; the last
    /// queue attaches the program that gives each datagram to the socket of the CPU it arrived on (<see cref="ReusePortSteering"/>).
    /// </summary>
    public static UdpUnderlay Open(VtepEndpoint local, int batchSize, int queue, int queues)
    {
        if (queues > 1 && queue == 0)
        {
            using var probe = Open(local, 1, 0, 1); // throws PortInUse and friends with the usual sentences
        }
        int fd = Interop.Libc.socket(Interop.AF_INET, Interop.SOCK_DGRAM | Interop.SOCK_CLOEXEC | Interop.SOCK_NONBLOCK, Interop.IPPROTO_UDP);
        if (fd < 0) throw Netns.Namespaces.SystemError("socket(AF_INET, SOCK_DGRAM)");
        var handle = new SafeFdHandle(fd);
        try
        {
            int one = 1;
            if (queues > 1 && Interop.Libc.setsockopt(fd, Interop.SOL_SOCKET, Interop.SO_REUSEPORT, &one, sizeof(int)) != 0)
                throw Netns.Namespaces.SystemError("setsockopt(SO_REUSEPORT)");
            if (!SetBuffersAndBind(fd, local))
            {
                int errno = Marshal.GetLastPInvokeError();
                throw errno switch
                {
                    Interop.EADDRINUSE => new RouterException(RouterErrorCode.PortInUse,
                        $"cannot bind the data path to {local}/udp: the port is already in use (another useroverlay, or a kernel VXLAN device with that dstport, is running in this namespace)"),
                    Interop.EADDRNOTAVAIL => new RouterException(RouterErrorCode.AddressNotAvailable,
                        $"cannot bind the data path to {local}/udp: {local.IPAddress} is not an address of any interface in this network namespace (check underlay.address)"),
                    Interop.EACCES or Interop.EPERM => new RouterException(RouterErrorCode.PermissionDenied,
                        $"cannot bind the data path to {local}/udp: permission denied"),
                    _ => new RouterException(RouterErrorCode.SystemError, $"cannot bind the data path to {local}/udp: {Interop.ErrorText(errno)}"),
                };
            }
            // UDP GRO: the kernel hands over runs of same-size datagrams from one sender as one buffer (a cmsg gives the size);
            // UDP GSO (UDP_SEGMENT on send) needs no socket option. Both since Linux 5.0; without GRO, datagrams come one by one.
            int on = 1;
            bool gro = Interop.Libc.setsockopt(fd, Interop.SOL_UDP, Interop.UDP_GRO, &on, sizeof(int)) == 0;
            if (queues > 1 && queue == queues - 1 && !ReusePortSteering.AttachCpuProgram(fd, queues))
                throw Netns.Namespaces.SystemError("setsockopt(SO_ATTACH_REUSEPORT_CBPF)");
            return new UdpUnderlay(handle, local, batchSize, segmentation: gro);
        }
        catch
        {
            handle.Dispose();
            throw;
        }
    }
}
