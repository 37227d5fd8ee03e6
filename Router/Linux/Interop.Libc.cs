using System.Runtime.InteropServices;

namespace UserOverlay.Router.Linux;

/// <summary>
/// libc imports used by the Linux data path, as runtime declares them: source-generated
/// (<c>[LibraryImport]</c>), <c>SetLastError = true</c>, errors read with
/// <see cref="Marshal.GetLastPInvokeError"/>. Every import takes raw pointers into pinned
/// buffers so the per-packet calls marshal nothing and allocate nothing.
/// </summary>
internal static unsafe partial class Interop
{
    internal static partial class Libc
    {
        private const string Lib = "libc";

        [LibraryImport(Lib, SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
        internal static partial int open(string path, int flags);

        [LibraryImport(Lib, SetLastError = true)]
        internal static partial int close(int fd);

        [LibraryImport(Lib, SetLastError = true)]
        internal static partial nint read(int fd, byte* buf, nint count);

        [LibraryImport(Lib, SetLastError = true)]
        internal static partial nint write(int fd, byte* buf, nint count);

        [LibraryImport(Lib, SetLastError = true)]
        internal static partial nint writev(int fd, IoVec* iov, int iovcnt);

        [LibraryImport(Lib, SetLastError = true)]
        internal static partial int ioctl(int fd, nuint request, void* arg);

        [LibraryImport(Lib, SetLastError = true)]
        internal static partial int ioctl(int fd, nuint request, nuint arg);

        [LibraryImport(Lib, SetLastError = true)]
        internal static partial int setns(int fd, int nstype);

        [LibraryImport(Lib, SetLastError = true)]
        internal static partial int eventfd(uint initval, int flags);

        [LibraryImport(Lib, SetLastError = true)]
        internal static partial int epoll_create1(int flags);

        [LibraryImport(Lib, SetLastError = true)]
        internal static partial int epoll_ctl(int epfd, int op, int fd, EpollEvent* ev);

        [LibraryImport(Lib, SetLastError = true)]
        internal static partial int epoll_wait(int epfd, EpollEvent* events, int maxevents, int timeout);

        [LibraryImport(Lib, SetLastError = true)]
        internal static partial int socket(int domain, int type, int protocol);

        [LibraryImport(Lib, SetLastError = true)]
        internal static partial int bind(int fd, void* addr, uint addrlen);

        [LibraryImport(Lib, SetLastError = true)]
        internal static partial int setsockopt(int fd, int level, int optname, void* optval, uint optlen);

        [LibraryImport(Lib, SetLastError = true)]
        internal static partial int getsockopt(int fd, int level, int optname, void* optval, uint* optlen);

        [LibraryImport(Lib, SetLastError = true)]
        internal static partial int shutdown(int fd, int how);

        [LibraryImport(Lib, SetLastError = true)]
        internal static partial int recvmmsg(int fd, MMsgHdr* msgvec, uint vlen, int flags, void* timeout);

        [LibraryImport(Lib, SetLastError = true)]
        internal static partial int sendmmsg(int fd, MMsgHdr* msgvec, uint vlen, int flags);

        [LibraryImport(Lib, SetLastError = true)]
        internal static partial nint sendto(int fd, byte* buf, nint len, int flags, void* addr, uint addrlen);

        [LibraryImport(Lib, SetLastError = true)]
        internal static partial nint recv(int fd, byte* buf, nint len, int flags);

        [LibraryImport(Lib, SetLastError = true)]
        internal static partial int fcntl(int fd, int cmd, int arg);

        [LibraryImport(Lib)]
        internal static partial uint geteuid();

        [LibraryImport(Lib, SetLastError = true)]
        internal static partial int if_nametoindex(byte* name);

        [LibraryImport(Lib)]
        internal static partial int getpid();

        [LibraryImport(Lib)]
        internal static partial int gettid();

        [LibraryImport(Lib, SetLastError = true)]
        internal static partial int sched_setaffinity(int pid, nuint cpusetsize, ulong* mask);

        [LibraryImport(Lib, SetLastError = true)]
        internal static partial int sched_getaffinity(int pid, nuint cpusetsize, ulong* mask);

        /// <summary>syscall(2) with three integer arguments (variadic in C; integer arguments pass in registers alike).</summary>
        [LibraryImport(Lib, SetLastError = true)]
        internal static partial nint syscall(nint number, nint a, nint b, nint c);

        /// <summary>syscall(2) with six integer arguments.</summary>
        [LibraryImport(Lib, SetLastError = true)]
        internal static partial nint syscall(nint number, nint a, nint b, nint c, nint d, nint e, nint f);

        [LibraryImport(Lib, SetLastError = true)]
        internal static partial void* mmap(void* addr, nuint length, int prot, int flags, int fd, long offset);

        [LibraryImport(Lib, SetLastError = true)]
        internal static partial int munmap(void* addr, nuint length);
    }

    /// <summary>A classic BPF instruction (struct sock_filter).</summary>
    [StructLayout(LayoutKind.Sequential)]
    internal struct SockFilter
    {
        public ushort Code;
        public byte Jt, Jf;
        public uint K;
    }

    /// <summary>struct sock_fprog.</summary>
    [StructLayout(LayoutKind.Sequential)]
    internal struct SockFProg
    {
        public ushort Length;
        public SockFilter* Filter;
    }

    // Flags and constants (x86_64/aarch64 Linux values; the generic ABI).
    internal const int O_RDONLY = 0, O_RDWR = 2, O_NONBLOCK = 0x800, O_CLOEXEC = 0x80000;
    internal const int CLONE_NEWNET = 0x40000000;
    internal const int EFD_CLOEXEC = 0x80000, EFD_NONBLOCK = 0x800;
    internal const int EPOLL_CLOEXEC = 0x80000;
    internal const int EPOLL_CTL_ADD = 1, EPOLL_CTL_DEL = 2, EPOLL_CTL_MOD = 3;
    internal const uint EPOLLIN = 0x001, EPOLLERR = 0x008, EPOLLHUP = 0x010;
    internal const int AF_INET = 2, AF_NETLINK = 16;
    internal const int SOCK_DGRAM = 2, SOCK_RAW = 3, SOCK_CLOEXEC = 0x80000, SOCK_NONBLOCK = 0x800;
    internal const int IPPROTO_UDP = 17, SOL_UDP = 17, UDP_SEGMENT = 103, UDP_GRO = 104;
    internal const int IPPROTO_ESP = 50, IPPROTO_RAW = 255;
    internal const int SOL_SOCKET = 1, SO_SNDBUF = 7, SO_RCVBUF = 8, SO_SNDBUFFORCE = 32, SO_RCVBUFFORCE = 33;
    internal const int SHUT_RD = 0, SHUT_RDWR = 2;
    internal const int SO_REUSEPORT = 15, SO_ATTACH_FILTER = 26, SO_ATTACH_BPF = 50, SO_ATTACH_REUSEPORT_CBPF = 51, SO_ATTACH_REUSEPORT_EBPF = 52;
    internal const int MSG_DONTWAIT = 0x40, MSG_TRUNC = 0x20, MSG_WAITFORONE = 0x10000;
    internal const int F_GETFL = 3, F_SETFL = 4;

    // errno values (asm-generic).
    internal const int EPERM = 1, ENOENT = 2, EINTR = 4, EIO = 5, EBADF = 9, EAGAIN = 11, ENOMEM = 12, EACCES = 13,
        EBUSY = 16, EEXIST = 17, ENODEV = 19, EINVAL = 22, ENOSYS = 38, EMSGSIZE = 90, EADDRINUSE = 98, EADDRNOTAVAIL = 99,
        ENETUNREACH = 101, ENOBUFS = 105, ECONNREFUSED = 111, EHOSTUNREACH = 113;

    [StructLayout(LayoutKind.Explicit, Size = 12, Pack = 4)]
    internal struct EpollEvent
    {
        [FieldOffset(0)] public uint Events;
        [FieldOffset(4)] public ulong Data;
    }

    [StructLayout(LayoutKind.Sequential)]
    internal struct IoVec
    {
        public byte* Base;
        public nuint Length;
    }

    [StructLayout(LayoutKind.Sequential)]
    internal struct MsgHdr
    {
        public void* Name;
        public uint NameLen;
        public IoVec* Iov;
        public nuint IovLen;
        public void* Control;
        public nuint ControlLen;
        public int Flags;
    }

    [StructLayout(LayoutKind.Sequential)]
    internal struct MMsgHdr
    {
        public MsgHdr Hdr;
        public uint Len;
    }

    /// <summary>A control message with a 4-byte payload (struct cmsghdr + data, padded): UDP_SEGMENT (u16) or UDP_GRO (int).</summary>
    [StructLayout(LayoutKind.Sequential)]
    internal struct CmsgInt
    {
        public nuint Len;
        public int Level;
        public int Type;
        public int Value;
        public int Pad;
        /// <summary>CMSG_LEN for a payload of <paramref name="bytes"/> bytes.</summary>
        public static nuint LengthFor(int bytes) => (nuint)(sizeof(nuint) + 8 + bytes);
    }

    /// <summary>An IPv4 header without options, as a raw IPPROTO_RAW socket takes it (fields in network byte order).</summary>
    [StructLayout(LayoutKind.Sequential, Pack = 1)]
    internal struct Ipv4Header
    {
        public byte VersionIhl;
        public byte Tos;
        public ushort TotalLengthBE;
        public ushort IdentificationBE;
        public ushort FragmentBE;
        public byte Ttl;
        public byte Protocol;
        public ushort ChecksumBE;
        public uint SourceBE;
        public uint DestinationBE;
    }

    /// <summary>struct sockaddr_in: family, port and address in network byte order.</summary>
    [StructLayout(LayoutKind.Sequential, Size = 16)]
    internal struct SockAddrIn
    {
        public ushort Family;
        public ushort PortBE;
        public uint AddrBE;
        public ulong Zero;
    }

    /// <summary>Message for a failed call: "name: strerror(errno)".</summary>
    internal static string ErrorText(int errno) => Marshal.GetPInvokeErrorMessage(errno);
}
