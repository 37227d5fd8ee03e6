using System.Buffers.Binary;
using System.Runtime.InteropServices;
using UserOverlay.Router.Linux;

namespace UserOverlay.Router.Underlay;

/// <summary>
/// A datagram socket of the underlay, driven in batches: recvmmsg and sendmmsg through message vectors preallocated in
/// native memory, so a batch costs one system call and no allocation. The pipeline worker polls the socket itself with
/// epoll. Two kinds: <see cref="UdpUnderlay"/> (the VXLAN socket, and ESP-in-UDP, RFC 3948) and
/// <see cref="RawEspUnderlay"/> (ESP in transport mode: a raw receiving socket whose IPv4 header is stripped here, so
/// callers see the ESP packet from its SPI on, and a send-only header-included socket for which this class writes each
/// IPv4 header).
/// Receive and Send from the worker's thread; Dispose only after the worker has stopped.
/// </summary>
internal abstract unsafe class SocketUnderlay : IUnderlay
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

    /// <summary>
    /// Takes ownership of <paramref name="handle"/> (and <paramref name="sendHandle"/>, a header-included socket that
    /// sends in its place, when given). <paramref name="stripIpHeader"/>: received datagrams start with an IPv4 header
    /// (a raw socket). <paramref name="segmentation"/>: UDP GSO and GRO are on.
    /// </summary>
    protected SocketUnderlay(SafeFdHandle handle, VtepEndpoint local, int batch, bool stripIpHeader = false, bool segmentation = false, SafeFdHandle? sendHandle = null)
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

    /// <summary>Large socket buffers (a burst must not overflow them), then bind; false with errno set when bind fails.</summary>
    protected static bool SetBuffersAndBind(int fd, VtepEndpoint local)
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

    /// <inheritdoc />
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
