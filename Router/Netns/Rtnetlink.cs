using System.Buffers.Binary;
using System.Runtime.InteropServices;
using UserOverlay.Router.Linux;

namespace UserOverlay.Router.Netns;

/// <summary>
/// A minimal rtnetlink client (RFC 3549, linux/rtnetlink.h) for configuring the endpoint's TAP:
/// MAC, MTU, link up (RTM_NEWLINK), its IPv4 address (RTM_NEWADDR) and its root qdisc (RTM_NEWQDISC,
/// linux/pkt_sched.h). The socket belongs to the
/// namespace of the thread that opened it, so open it inside the endpoint's namespace. Each
/// request asks for an ACK and throws a <see cref="RouterException"/> with the kernel's error.
/// Control-plane code: clarity over allocation.
/// </summary>
internal sealed unsafe class Rtnetlink : IDisposable
{
    private const int NETLINK_ROUTE = 0;
    private const ushort RTM_NEWLINK = 16, RTM_NEWADDR = 20, RTM_NEWQDISC = 36, NLMSG_ERROR = 2;
    private const ushort NLM_F_REQUEST = 0x1, NLM_F_ACK = 0x4, NLM_F_EXCL = 0x200, NLM_F_CREATE = 0x400, NLM_F_REPLACE = 0x100;
    private const ushort IFLA_ADDRESS = 1, IFLA_MTU = 4;
    private const ushort IFA_ADDRESS = 1, IFA_LOCAL = 2, IFA_BROADCAST = 4;
    private const ushort TCA_KIND = 1;
    private const uint TC_H_ROOT = 0xFFFF_FFFF;
    private const uint IFF_UP = 0x1;
    private const int NlMsgHdrLength = 16, IfInfoMsgLength = 16, IfAddrMsgLength = 8, TcMsgLength = 20;

    private readonly SafeFdHandle _fd;
    private uint _seq;

    public Rtnetlink()
    {
        int fd = Interop.Libc.socket(Interop.AF_NETLINK, Interop.SOCK_RAW | Interop.SOCK_CLOEXEC, NETLINK_ROUTE);
        if (fd < 0) throw Namespaces.SystemError("socket(AF_NETLINK)");
        _fd = new SafeFdHandle(fd);
    }

    /// <summary>Index of the interface <paramref name="name"/> in this socket's namespace.</summary>
    public static int IndexOf(string name)
    {
        Span<byte> buf = stackalloc byte[16];
        buf.Clear();
        System.Text.Encoding.ASCII.GetBytes(name, buf);
        fixed (byte* p = buf)
        {
            int index = Interop.Libc.if_nametoindex(p);
            if (index == 0) throw Namespaces.SystemError($"if_nametoindex({name})");
            return index;
        }
    }

    /// <summary>Sets MAC address and MTU of a link.</summary>
    public void SetLinkAddressAndMtu(int index, MacAddress mac, int mtu, string what)
    {
        var m = new Message(RTM_NEWLINK, NLM_F_REQUEST | NLM_F_ACK, ++_seq);
        m.IfInfo(index, 0, 0);
        Span<byte> macBytes = stackalloc byte[6];
        mac.Write(macBytes);
        m.Attribute(IFLA_ADDRESS, macBytes);
        m.AttributeU32(IFLA_MTU, (uint)mtu);
        Transact(m, what);
    }

    /// <summary>Sets a link administratively up.</summary>
    public void SetLinkUp(int index, string what)
    {
        var m = new Message(RTM_NEWLINK, NLM_F_REQUEST | NLM_F_ACK, ++_seq);
        m.IfInfo(index, IFF_UP, IFF_UP);
        Transact(m, what);
    }

    /// <summary>Adds an IPv4 address (host-order integer) with its prefix length and broadcast address.</summary>
    public void AddIPv4Address(int index, uint address, int prefixLength, string what)
    {
        var m = new Message(RTM_NEWADDR, NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_REPLACE, ++_seq);
        m.IfAddr(index, prefixLength);
        Span<byte> a = stackalloc byte[4];
        BinaryPrimitives.WriteUInt32BigEndian(a, address);
        m.Attribute(IFA_LOCAL, a);
        m.Attribute(IFA_ADDRESS, a);
        if (prefixLength < 31)
        {
            uint mask = prefixLength == 0 ? 0 : uint.MaxValue << (32 - prefixLength);
            BinaryPrimitives.WriteUInt32BigEndian(a, address | ~mask);
            m.Attribute(IFA_BROADCAST, a);
        }
        Transact(m, what);
    }

    /// <summary>
    /// Makes <c>noqueue</c> the link's root qdisc (what <c>tc qdisc replace dev X root noqueue</c> does): frames go
    /// straight to the driver, and a driver that cannot take one drops it there, telling the sender (ENOBUFS). Set on a
    /// link still down, no other qdisc is ever built: bringing it up keeps this one instead of attaching the default.
    /// </summary>
    public void SetRootQdiscNoQueue(int index, string what)
    {
        var m = new Message(RTM_NEWQDISC, NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_REPLACE, ++_seq);
        m.TcMsg(index, handle: 0, parent: TC_H_ROOT);
        m.Attribute(TCA_KIND, "noqueue\0"u8);
        Transact(m, what);
    }

    private void Transact(Message m, string what)
    {
        byte[] req = m.ToArray();
        Span<byte> kernel = stackalloc byte[12]; // struct sockaddr_nl: family, pad, pid 0 (the kernel), groups 0
        kernel.Clear();
        BinaryPrimitives.WriteUInt16LittleEndian(kernel, Interop.AF_NETLINK);
        fixed (byte* r = req)
        fixed (byte* k = kernel)
        {
            if (Interop.Libc.sendto(_fd.Fd, r, req.Length, 0, k, 12) < 0)
                throw Namespaces.SystemError($"{what}: netlink send");
        }
        byte[] resp = new byte[8192];
        while (true)
        {
            nint n;
            fixed (byte* p = resp) n = Interop.Libc.recv(_fd.Fd, p, resp.Length, 0);
            if (n < 0)
            {
                if (Marshal.GetLastPInvokeError() == Interop.EINTR) continue;
                throw Namespaces.SystemError($"{what}: netlink receive");
            }
            for (int off = 0; off + NlMsgHdrLength <= n;)
            {
                uint len = MemoryMarshal.Read<uint>(resp.AsSpan(off));
                ushort type = MemoryMarshal.Read<ushort>(resp.AsSpan(off + 4));
                uint seq = MemoryMarshal.Read<uint>(resp.AsSpan(off + 8));
                if (len < NlMsgHdrLength) throw new RouterException(RouterErrorCode.SystemError, $"{what}: malformed netlink reply");
                if (type == NLMSG_ERROR && seq == m.Sequence)
                {
                    int error = MemoryMarshal.Read<int>(resp.AsSpan(off + NlMsgHdrLength));
                    if (error == 0) return;
                    int errno = -error;
                    throw new RouterException(errno == Interop.EPERM ? RouterErrorCode.PermissionDenied : RouterErrorCode.SystemError,
                        $"{what}: {Interop.ErrorText(errno)}");
                }
                off += (int)((len + 3) & ~3u);
            }
        }
    }

    public void Dispose() => _fd.Dispose();

    /// <summary>A netlink request being assembled (host byte order, 4-byte aligned attributes).</summary>
    private sealed class Message
    {
        private readonly List<byte> _b = new(128);
        public uint Sequence { get; }

        public Message(ushort type, ushort flags, uint seq)
        {
            Sequence = seq;
            U32(0); // length, patched in ToArray
            U16(type);
            U16(flags);
            U32(seq);
            U32(0); // pid: let the kernel assign
        }

        public void IfInfo(int index, uint flags, uint change)
        {
            _b.Add(0); _b.Add(0); // family AF_UNSPEC, pad
            U16(0);               // type
            U32((uint)index);
            U32(flags);
            U32(change);
        }

        public void IfAddr(int index, int prefixLength)
        {
            _b.Add(Interop.AF_INET);
            _b.Add((byte)prefixLength);
            _b.Add(0); // flags
            _b.Add(0); // scope universe
            U32((uint)index);
        }

        public void TcMsg(int index, uint handle, uint parent)
        {
            _b.Add(0); _b.Add(0); // family AF_UNSPEC, pad
            U16(0);               // pad
            U32((uint)index);
            U32(handle);
            U32(parent);
            U32(0);               // info
        }

        public void Attribute(ushort type, ReadOnlySpan<byte> data)
        {
            U16((ushort)(4 + data.Length));
            U16(type);
            foreach (byte x in data) _b.Add(x);
            while (_b.Count % 4 != 0) _b.Add(0);
        }

        public void AttributeU32(ushort type, uint value)
        {
            Span<byte> v = stackalloc byte[4];
            MemoryMarshal.Write(v, in value);
            Attribute(type, v);
        }

        private void U16(ushort v) { Span<byte> s = stackalloc byte[2]; MemoryMarshal.Write(s, in v); _b.Add(s[0]); _b.Add(s[1]); }
        private void U32(uint v) { Span<byte> s = stackalloc byte[4]; MemoryMarshal.Write(s, in v); foreach (byte x in s) _b.Add(x); }

        public byte[] ToArray()
        {
            byte[] a = _b.ToArray();
            uint len = (uint)a.Length;
            MemoryMarshal.Write(a.AsSpan(), in len);
            return a;
        }
    }
}
