using System.Buffers.Binary;
using System.Runtime.InteropServices;

namespace UserOverlay.Router.Underlay;

/// <summary>
/// A datagram socket of the underlay, driven in batches. <see cref="Open(VtepEndpoint, int)"/>: the VXLAN socket — one
/// non-blocking UDP socket bound to this host's VTEP address and data port,
/// driven with recvmmsg and sendmmsg through message vectors preallocated in native memory, so a
/// batch costs one syscall and no allocation. The pipeline worker polls the socket itself with
/// epoll. <see cref="OpenRawEsp"/>: the same for ESP in transport mode: a raw socket of IP protocol 50
/// receives (the IPv4 header is stripped here, so callers see the ESP packet from its SPI on), and a
/// second, send-only IPPROTO_RAW socket sends with an IPv4 header this class writes (see <see cref="OpenRawEsp"/>). <see cref="Open(VtepEndpoint, int)"/> at port 4500 serves ESP-in-UDP (RFC 3948).
/// Receive and Send from the worker's thread; Dispose only after the worker has stopped.
/// </summary>
internal sealed unsafe class UdpUnderlay : IUnderlay
{
    private const int SocketBufferBytes = 8 << 20;

    private readonly SafeFdHandle _handle;
    private readonly int _fd;
    private readonly SafeFdHandle? _sendHandle;
    private readonly int _sendFd;
    private readonly Interop.Ipv4Header* _txIpHeaders; // send-only raw socket: one prebuilt header per message slot
    private readonly int _batch;
    private readonly bool _stripIpHeader;
    private readonly Interop.MMsgHdr* _rxMsgs;
    private readonly Interop.IoVec* _rxIov;
    private readonly Interop.SockAddrIn* _rxAddrs;
    private readonly Interop.MMsgHdr* _txMsgs;
    private readonly Interop.IoVec* _txIov;
    private readonly Interop.SockAddrIn* _txAddrs;
    private readonly Interop.CmsgInt* _rxControl;
    private readonly Interop.CmsgInt* _txControl;
    private readonly PacketBuffer?[] _rxBuffers; // the buffer each receive slot's iovec points into
    private int _rxOffset = -1;
    private int _rxDirty;                        // receive slots the kernel filled last time (their lengths and flags need resetting)

    public VtepEndpoint LocalEndpoint { get; }

    /// <inheritdoc />
    public bool SupportsSegmentation { get; }

    private UdpUnderlay(SafeFdHandle handle, VtepEndpoint local, int batch, bool stripIpHeader = false, bool segmentation = false, SafeFdHandle? sendHandle = null)
    {
        _stripIpHeader = stripIpHeader;
        SupportsSegmentation = segmentation;
        _handle = handle;
        _fd = handle.Fd;
        _sendHandle = sendHandle;
        _sendFd = sendHandle?.Fd ?? handle.Fd;
        LocalEndpoint = local;
        _batch = batch;
        _rxMsgs = (Interop.MMsgHdr*)NativeMemory.AllocZeroed((nuint)(batch * sizeof(Interop.MMsgHdr)));
        _rxIov = (Interop.IoVec*)NativeMemory.AllocZeroed((nuint)(batch * sizeof(Interop.IoVec)));
        _rxAddrs = (Interop.SockAddrIn*)NativeMemory.AllocZeroed((nuint)(batch * sizeof(Interop.SockAddrIn)));
        _txMsgs = (Interop.MMsgHdr*)NativeMemory.AllocZeroed((nuint)(Constants.MaxSendBatch * sizeof(Interop.MMsgHdr)));
        int iovPerMessage = sendHandle is null ? 1 : 2;
        _txIov = (Interop.IoVec*)NativeMemory.AllocZeroed((nuint)(Constants.MaxSendBatch * iovPerMessage * sizeof(Interop.IoVec)));
        _txAddrs = (Interop.SockAddrIn*)NativeMemory.AllocZeroed((nuint)(Constants.MaxSendBatch * sizeof(Interop.SockAddrIn)));
        _rxControl = (Interop.CmsgInt*)NativeMemory.AllocZeroed((nuint)(batch * sizeof(Interop.CmsgInt)));
        _txControl = (Interop.CmsgInt*)NativeMemory.AllocZeroed((nuint)(Constants.MaxSendBatch * sizeof(Interop.CmsgInt)));
        _rxBuffers = new PacketBuffer?[batch];
        for (int i = 0; i < batch; i++)
        {
            _rxMsgs[i].Hdr.Iov = &_rxIov[i];
            _rxMsgs[i].Hdr.IovLen = 1;
            _rxMsgs[i].Hdr.Name = &_rxAddrs[i];
            if (segmentation) _rxMsgs[i].Hdr.Control = &_rxControl[i];
        }
        _rxDirty = batch; // every slot gets its lengths and flags on the first receive
        for (int i = 0; i < Constants.MaxSendBatch; i++)
        {
            _txControl[i].Len = Interop.CmsgInt.LengthFor(2);
            _txControl[i].Level = Interop.SOL_UDP;
            _txControl[i].Type = Interop.UDP_SEGMENT;
        }
        for (int i = 0; i < Constants.MaxSendBatch; i++)
        {
            _txMsgs[i].Hdr.Iov = &_txIov[i * iovPerMessage];
            _txMsgs[i].Hdr.IovLen = (nuint)iovPerMessage;
            _txMsgs[i].Hdr.Name = &_txAddrs[i];
            _txMsgs[i].Hdr.NameLen = (uint)sizeof(Interop.SockAddrIn);
            _txAddrs[i].Family = Interop.AF_INET;
        }
        if (sendHandle is not null)
        {
            // IP_HDRINCL: the kernel fills in the total length, the checksum and (left 0 here) the identification.
            _txIpHeaders = (Interop.Ipv4Header*)NativeMemory.AllocZeroed((nuint)(Constants.MaxSendBatch * sizeof(Interop.Ipv4Header)));
            for (int i = 0; i < Constants.MaxSendBatch; i++)
            {
                Interop.Ipv4Header* h = &_txIpHeaders[i];
                h->VersionIhl = 0x45;
                h->FragmentBE = BinaryPrimitives.ReverseEndianness((ushort)0x4000); // DF, as the kernel sets it for a raw socket with path MTU discovery
                h->Ttl = 64;
                h->Protocol = Interop.IPPROTO_ESP;
                h->SourceBE = BinaryPrimitives.ReverseEndianness(local.Address);
                _txIov[2 * i].Base = (byte*)h;
                _txIov[2 * i].Length = (nuint)sizeof(Interop.Ipv4Header);
            }
        }
    }

    /// <summary>Opens and binds the socket; failures become a <see cref="RouterException"/> with one clear sentence.</summary>
    public static UdpUnderlay Open(VtepEndpoint local, int batchSize) => Open(local, batchSize, 0, 1);

    /// <summary>
    /// Opens socket <paramref name="queue"/> of a group of <paramref name="queues"/> on one address and port
    /// (SO_REUSEPORT; open them in queue order). Queue 0 first makes sure nobody else holds the port (a plain bind,
    /// closed again), so a second router still gets "port in use" rather than a share of the traffic; the last
    /// queue attaches the program that gives each datagram to the socket of the CPU it arrived on (<see cref="Pipeline.CpuSteering"/>).
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
            if (queues > 1 && queue == queues - 1 && !Pipeline.CpuSteering.AttachReusePortCpuProgram(fd, queues))
                throw Netns.Namespaces.SystemError("setsockopt(SO_ATTACH_REUSEPORT_CBPF)");
            return new UdpUnderlay(handle, local, batchSize, segmentation: gro);
        }
        catch
        {
            handle.Dispose();
            throw;
        }
    }

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
    /// (<see cref="Pipeline.CpuSteering.AttachQueueFilter"/>).</param>
    /// <param name="queues">Queues in all.</param>
    public static UdpUnderlay OpenRawEsp(VtepEndpoint local, int batchSize, int queue = 0, int queues = 1)
    {
        SafeFdHandle handle = OpenRaw(Interop.IPPROTO_ESP, local);
        SafeFdHandle? send = null;
        try
        {
            if (queues > 1 && !Pipeline.CpuSteering.AttachQueueFilter(handle.Fd, queue, queues))
                throw Netns.Namespaces.SystemError("setsockopt(SO_ATTACH_FILTER) on the raw ESP socket");
            send = OpenRaw(Interop.IPPROTO_RAW, local);
            return new UdpUnderlay(handle, local with { Port = 0 }, batchSize, stripIpHeader: true, sendHandle: send);
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

    /// <summary>Large socket buffers (a burst must not overflow them), then bind; false with errno set when bind fails.</summary>
    private static bool SetBuffersAndBind(int fd, VtepEndpoint local)
    {
        SetBuffer(fd, Interop.SO_RCVBUFFORCE, Interop.SO_RCVBUF);
        SetBuffer(fd, Interop.SO_SNDBUFFORCE, Interop.SO_SNDBUF);
        Interop.SockAddrIn sa = default;
        sa.Family = Interop.AF_INET;
        sa.PortBE = BinaryPrimitives.ReverseEndianness(local.Port);
        sa.AddrBE = BinaryPrimitives.ReverseEndianness(local.Address);
        return Interop.Libc.bind(fd, &sa, (uint)sizeof(Interop.SockAddrIn)) == 0;
    }

    private static void SetBuffer(int fd, int force, int plain)
    {
        int size = SocketBufferBytes;
        if (Interop.Libc.setsockopt(fd, Interop.SOL_SOCKET, force, &size, sizeof(int)) != 0)
            Interop.Libc.setsockopt(fd, Interop.SOL_SOCKET, plain, &size, sizeof(int)); // unprivileged: capped by net.core.*mem_max
    }

    public int Receive(Span<UnderlayDatagram> datagrams, int offset)
    {
        int n = Math.Min(datagrams.Length, _batch);
        // The message vector is rewritten only where it changed: a worker passes the same buffers every time, and
        // the kernel changes only the entries it filled. Touching every buffer of the batch for a single datagram
        // (as rewriting all of them did) costs a page per buffer — see PacketBuffer.Capacity.
        for (int i = 0; i < n; i++)
        {
            PacketBuffer b = datagrams[i].Buffer;
            if (!ReferenceEquals(_rxBuffers[i], b) || _rxOffset != offset)
            {
                _rxBuffers[i] = b;
                _rxIov[i].Base = b.Pointer + offset;
                _rxIov[i].Length = (nuint)(b.Capacity - offset);
            }
        }
        _rxOffset = offset;
        for (int i = 0; i < _rxDirty; i++) ResetReceiveSlot(i);
        _rxDirty = 0;
        while (true)
        {
            int got = Interop.Libc.recvmmsg(_fd, _rxMsgs, (uint)n, Interop.MSG_DONTWAIT, null);
            if (got > 0)
            {
                _rxDirty = got;
                for (int i = 0; i < got; i++)
                {
                    ref UnderlayDatagram d = ref datagrams[i];
                    d.Offset = offset;
                    d.Length = (int)_rxMsgs[i].Len;
                    d.Truncated = (_rxMsgs[i].Hdr.Flags & Interop.MSG_TRUNC) != 0;
                    d.Peer = new VtepEndpoint(BinaryPrimitives.ReverseEndianness(_rxAddrs[i].AddrBE), BinaryPrimitives.ReverseEndianness(_rxAddrs[i].PortBE));
                    d.SegmentSize = SupportsSegmentation && _rxMsgs[i].Hdr.ControlLen >= (nuint)Interop.CmsgInt.LengthFor(4)
                        && _rxControl[i].Level == Interop.SOL_UDP && _rxControl[i].Type == Interop.UDP_GRO && _rxControl[i].Value < d.Length
                        ? _rxControl[i].Value : 0;
                    if (_stripIpHeader) StripIpv4Header(ref d);
                }
                return got;
            }
            if (got == 0) return 0;
            int errno = Marshal.GetLastPInvokeError();
            if (errno == Interop.EINTR) continue;
            if (errno is Interop.EAGAIN or Interop.EBADF) return 0;
            // ECONNREFUSED and friends (ICMP errors queued on the socket) carry no datagram: try again.
        }
    }

    private void ResetReceiveSlot(int i)
    {
        _rxMsgs[i].Hdr.NameLen = (uint)sizeof(Interop.SockAddrIn);
        _rxMsgs[i].Hdr.Flags = 0;
        if (SupportsSegmentation)
        {
            _rxMsgs[i].Hdr.ControlLen = (nuint)sizeof(Interop.CmsgInt);
            _rxControl[i].Len = 0;
        }
    }

    /// <summary>A raw socket delivers the IPv4 header too: skip it (options included); a header that does not parse leaves nothing.</summary>
    private static void StripIpv4Header(ref UnderlayDatagram d)
    {
        ReadOnlySpan<byte> p = d.Buffer.Span.Slice(d.Offset, d.Length);
        int ihl = p.Length > 0 ? (p[0] & 0x0F) * 4 : 0;
        if (p.Length < 20 || (p[0] >> 4) != 4 || ihl < 20 || ihl > p.Length) { d.Length = 0; return; }
        d.Offset += ihl;
        d.Length -= ihl;
    }

    /// <inheritdoc />
    public SafeHandle ReadinessHandle => _handle;

    public int Send(ReadOnlySpan<UnderlayDatagram> datagrams)
    {
        int failed = 0;
        for (int start = 0; start < datagrams.Length; start += Constants.MaxSendBatch)
        {
            int n = Math.Min(Constants.MaxSendBatch, datagrams.Length - start);
            for (int i = 0; i < n; i++)
            {
                ref readonly UnderlayDatagram d = ref datagrams[start + i];
                if (_txIpHeaders != null)
                {
                    _txIpHeaders[i].DestinationBE = BinaryPrimitives.ReverseEndianness(d.Peer.Address);
                    _txIov[2 * i + 1].Base = d.Buffer.Pointer + d.Offset;
                    _txIov[2 * i + 1].Length = (nuint)d.Length;
                }
                else
                {
                    _txIov[i].Base = d.Buffer.Pointer + d.Offset;
                    _txIov[i].Length = (nuint)d.Length;
                }
                _txAddrs[i].PortBE = BinaryPrimitives.ReverseEndianness(d.Peer.Port);
                _txAddrs[i].AddrBE = BinaryPrimitives.ReverseEndianness(d.Peer.Address);
                if (d.SegmentSize > 0 && d.SegmentSize < d.Length)
                {
                    _txControl[i].Value = d.SegmentSize; // u16 in the first two bytes (little-endian host)
                    _txMsgs[i].Hdr.Control = &_txControl[i];
                    _txMsgs[i].Hdr.ControlLen = (nuint)sizeof(Interop.CmsgInt);
                }
                else
                {
                    _txMsgs[i].Hdr.Control = null;
                    _txMsgs[i].Hdr.ControlLen = 0;
                }
            }
            int sent = 0;
            while (sent < n)
            {
                int r = Interop.Libc.sendmmsg(_sendFd, _txMsgs + sent, (uint)(n - sent), 0);
                if (r > 0) { sent += r; continue; }
                int errno = Marshal.GetLastPInvokeError();
                if (r < 0 && errno == Interop.EINTR) continue;
                if (r < 0 && errno == Interop.EBADF) return failed + (n - sent);
                failed++; // this datagram was refused (EMSGSIZE, ENETUNREACH, ENOBUFS…): skip it, send the rest
                sent++;
            }
        }
        return failed;
    }

    public void Dispose()
    {
        _handle.Dispose();
        _sendHandle?.Dispose();
        if (_txIpHeaders != null) NativeMemory.Free(_txIpHeaders);
        NativeMemory.Free(_rxMsgs);
        NativeMemory.Free(_rxIov);
        NativeMemory.Free(_rxAddrs);
        NativeMemory.Free(_txMsgs);
        NativeMemory.Free(_txIov);
        NativeMemory.Free(_txAddrs);
        NativeMemory.Free(_rxControl);
        NativeMemory.Free(_txControl);
    }
}
