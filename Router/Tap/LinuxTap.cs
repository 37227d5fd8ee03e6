using System.Runtime.InteropServices;
using UserOverlay.Router.Linux;
using UserOverlay.Router.Netns;
using UserOverlay.Router.Offload;

namespace UserOverlay.Router.Tap;

/// <summary>
/// A TAP device (IFF_TAP | IFF_NO_PI) created inside an endpoint's network namespace: the
/// /dev/net/tun file descriptor is opened by a thread that has entered the namespace, so the
/// device is born there, while the router itself stays in the host's namespace. The device is
/// not persistent: closing the descriptor (Dispose, or the process exiting) removes it.
/// With offload (the default), the device speaks IFF_VNET_HDR with checksum and TCP segmentation
/// offload (TUNSETOFFLOAD TUN_F_CSUM | TSO4 | TSO6), as virtio-net does: the endpoint's stack hands
/// over TCP super-frames of up to 64 KB and frames with partial checksums (one read instead of
/// forty-five), and accepts coalesced super-frames back (one write). The 10-byte virtio-net
/// header is read into the headroom in front of the frame and written with writev.
/// Read: one pipeline thread at a time. Write: any thread (each write(2) is one whole frame).
/// Dispose only after the pipeline has stopped using the device.
/// </summary>
internal sealed unsafe class LinuxTap : ITapDevice, IRingWritableTap
{
    private const nuint TUNSETIFF = 0x400454ca;
    private const short IFF_TAP = 0x0002, IFF_NO_PI = 0x1000, IFF_VNET_HDR = 0x4000, IFF_MULTI_QUEUE = 0x0100;
    private const ushort IFF_TUN_EXCL = 0x8000;
    private const nuint TUNSETOFFLOAD = 0x400454d0;
    private const uint TUN_F_CSUM = 0x01, TUN_F_TSO4 = 0x02, TUN_F_TSO6 = 0x04, TUN_F_USO4 = 0x20, TUN_F_USO6 = 0x40;

    private readonly SafeFdHandle _handle;
    private readonly int _fd; // hot path uses the raw descriptor; _handle owns it (see the Dispose contract)
    private LinuxTap[] _queues = [];
    private volatile bool _gone; // a read failed with an error other than EAGAIN/EINTR (see IsGone)

    private LinuxTap(SafeFdHandle handle, string name, bool offload, bool uso)
    {
        _handle = handle;
        _fd = handle.Fd;
        Name = name;
        SupportsOffload = offload;
        SupportsUdpSegmentation = uso;
    }

    /// <inheritdoc />
    public int QueueCount => Math.Max(1, _queues.Length);

    /// <inheritdoc />
    public ITapDevice Queue(int index) => index == 0 ? this : _queues[index];

    public string Name { get; }

    public bool SupportsOffload { get; }

    /// <inheritdoc />
    public bool SupportsUdpSegmentation { get; }

    public SafeHandle ReadinessHandle => _handle;

    /// <inheritdoc />
    /// <remarks>
    /// A TAP whose interface is deleted (<c>ip link del</c> in the namespace; the namespace itself outlives its name while
    /// the router holds the TAP open) keeps its descriptor: the driver detaches it, every read fails with EBADFD, and
    /// poll reports EPOLLERR for ever.
    /// </remarks>
    public bool IsGone => _gone;

    /// <inheritdoc />
    public int WriteFd => _fd;

    /// <summary>Creates the device in <c>request.Netns</c> and configures MAC, MTU, address and link up over rtnetlink.</summary>
    public static LinuxTap Create(TapRequest request)
    {
        if (!File.Exists("/dev/net/tun"))
            throw new RouterException(RouterErrorCode.TunUnavailable,
                "/dev/net/tun does not exist: load the TUN/TAP driver (modprobe tun) or create the node (mkdir -p /dev/net && mknod /dev/net/tun c 10 200)");
        // A device handed off to a runtime is born in the router's namespace, where the runtime finds it by name.
        return request.HandOff ? CreateHere(request) : Namespaces.RunIn(request.Netns, () => CreateHere(request));
    }

    private static LinuxTap CreateHere(TapRequest r)
    {
        string where = r.HandOff ? $"interface {r.Name} (for '{r.Netns}', in the router's namespace)" : $"interface {r.Name} in namespace '{r.Netns}'";
        SafeFdHandle handle = OpenQueue(r, where, first: true);
        var extra = new List<SafeFdHandle>();
        try
        {
            // UDP segmentation offload, probed: a kernel that accepts TUN_F_USO4/6 (6.2+) also takes UDP super-frames
            // written to the TAP, which is all the router uses. The flags are then set back without USO, so the kernel
            // never hands the router a UDP super-frame to read (the outbound path segments TCP only). Offloads are the
            // device's, whichever queue sets them.
            int fd = handle.Fd;
            bool uso = r.Offload && Interop.Libc.ioctl(fd, TUNSETOFFLOAD, (nuint)(TUN_F_CSUM | TUN_F_TSO4 | TUN_F_TSO6 | TUN_F_USO4 | TUN_F_USO6)) == 0;
            if (r.Offload && Interop.Libc.ioctl(fd, TUNSETOFFLOAD, (nuint)(TUN_F_CSUM | TUN_F_TSO4 | TUN_F_TSO6)) != 0)
                throw new RouterException(RouterErrorCode.SystemError, $"cannot enable offloads on {where}: TUNSETOFFLOAD: {Interop.ErrorText(Marshal.GetLastPInvokeError())}");
            for (int q = 1; q < r.Queues; q++) extra.Add(OpenQueue(r, where, first: false));
            // Each frame the endpoint sends goes to the queue of the CPU that sent it (without eBPF the driver hashes flows).
            if (r.Queues > 1) TapSteering.AttachCpuProgram(fd);
            using var nl = new Rtnetlink();
            int index = Rtnetlink.IndexOf(r.Name);
            nl.SetLinkAddressAndMtu(index, r.Mac, r.Mtu, $"set MAC {r.Mac} and MTU {r.Mtu} on {where}");
            // Qdisc noqueue, set while the link is down so the default is never built. The default on a multi-queue TAP
            // is mq with a pfifo_fast on each of the 256 transmit queues the kernel gives it whatever the number opened:
            // 6.6 MB of kernel memory per TAP, against 0.25 MB with noqueue. It queues nothing the TAP does not: the tun
            // driver never stops its queues, it drops a frame its ring (tx_queue_len) has no room for, under either
            // qdisc; with noqueue the sender learns of that drop (ENOBUFS) instead of the qdisc reporting success.
            nl.SetRootQdiscNoQueue(index, $"set qdisc noqueue on {where}");
            if (!r.HandOff)
            {
                nl.AddIPv4Address(index, r.Address, r.PrefixLength, $"add address {VtepEndpoint.FormatAddress(r.Address)}/{r.PrefixLength} to {where}");
                nl.SetLinkUp(index, $"set {where} up");
            }
            var tap = new LinuxTap(handle, r.Name, r.Offload, uso);
            if (extra.Count > 0)
                tap._queues = [tap, .. extra.Select(h => new LinuxTap(h, r.Name, r.Offload, uso))];
            return tap;
        }
        catch
        {
            foreach (var h in extra) h.Dispose();
            handle.Dispose();
            throw;
        }
    }

    /// <summary>The device's name now (TUNGETIFF: a runtime may have moved and renamed it); null once it is gone.</summary>
    public string? KernelName()
    {
        const nuint TUNGETIFF = 0x800454d2;
        byte* ifr = stackalloc byte[40];
        new Span<byte>(ifr, 40).Clear();
        if (_gone || Interop.Libc.ioctl(_fd, TUNGETIFF, ifr) != 0) return null;
        var name = new ReadOnlySpan<byte>(ifr, 16);
        int end = name.IndexOf((byte)0);
        return System.Text.Encoding.ASCII.GetString(end < 0 ? name : name[..end]);
    }

    /// <summary>Opens /dev/net/tun and attaches it to the device (the first queue creates it; IFF_TUN_EXCL refuses a name in use).</summary>
    private static SafeFdHandle OpenQueue(TapRequest r, string where, bool first)
    {
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
            *(ushort*)(ifr + 16) = (ushort)((ushort)(IFF_TAP | IFF_NO_PI | (r.Offload ? IFF_VNET_HDR : 0) | (r.Queues > 1 ? IFF_MULTI_QUEUE : 0))
                | (first ? IFF_TUN_EXCL : 0));
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
            return handle;
        }
        catch
        {
            handle.Dispose();
            throw;
        }
    }

    public int Read(ReadOnlySpan<PacketBuffer> bufs, Span<int> sizes, Span<OffloadInfo> offloads, int offset)
    {
        int count = 0;
        int hdr = SupportsOffload ? VirtioNetHeader.Length : 0; // the virtio-net header lands in the headroom
        while (count < bufs.Length)
        {
            PacketBuffer b = bufs[count];
            nint n = Interop.Libc.read(_fd, b.Pointer + offset - hdr, b.Capacity - offset + hdr);
            if (n < 0)
            {
                int errno = Marshal.GetLastPInvokeError();
                if (errno == Interop.EINTR) continue;
                if (errno != Interop.EAGAIN) _gone = true; // the device went away (EBADFD): report what we have, and that
                break; // EAGAIN: drained
            }
            if (n <= hdr) break;
            if (hdr == 0) offloads[count] = default;
            else if (!VirtioNetHeader.TryRead(b.Span.Slice(offset - hdr, hdr), out offloads[count]))
                continue; // a GSO type never enabled (UFO/USO): cannot happen; skip the frame
            sizes[count++] = (int)(n - hdr);
        }
        return count;
    }

    private int _ringReads; // reads to ask for next time: 2 or fewer, read(2)s (see Read with a context)
    private long _lastRound = long.MinValue; // the worker round that last read this queue

    /// <summary>Reads the next worker read will submit through the ring (2 or fewer: it uses read(2)). For tests.</summary>
    internal int RingReads => _ringReads;

    /// <summary>
    /// The worker's read, shaped by how busy the queue is. The context's round numbers the
    /// worker's epoll rounds. A queue not read in the previous round is quiet: one read(2), and no second read to find
    /// it empty — epoll is level-triggered and reports the queue again next round if it holds more. That probe was a
    /// system call per lone packet, on a VM where a call after idle costs several microseconds (README, "Where the
    /// round-trip time goes"). A queue read in two rounds running is busy: read until EAGAIN, or, once a drain has
    /// found more than one frame, through the worker's ring (the context's) when it has one: up to
    /// <c>bufs.Length</c> reads submitted in one io_uring_enter, each completing at once with a frame or -EAGAIN, as
    /// many as twice the last drain found.
    /// <paramref name="more"/>: the queue may hold more this round.
    /// </summary>
    public int Read(in TapReadContext context, ReadOnlySpan<PacketBuffer> bufs, Span<int> sizes, Span<OffloadInfo> offloads, int offset, out bool more)
    {
        IoRing? ring = context.Ring;
        long round = context.Round;
        bool busy = _lastRound >= round - 1;
        _lastRound = round;
        if (!busy)
        {
            int one = Read(bufs[..1], sizes, offloads, offset);
            more = false;
            _ringReads = one;
            return one;
        }
        if (ring is null || _ringReads <= 2)
        {
            int got = Read(bufs, sizes, offloads, offset);
            more = got == bufs.Length;
            _ringReads = got <= 1 ? got : got * 2;
            return got;
        }
        int hdr = SupportsOffload ? VirtioNetHeader.Length : 0;
        int want = Math.Min(Math.Min(bufs.Length, (int)ring.Capacity), _ringReads);
        for (int i = 0; i < want; i++)
        {
            PacketBuffer b = bufs[i];
            ring.PrepareRead(_fd, b.Pointer + offset - hdr, (uint)(b.Capacity - offset + hdr), (uint)i);
        }
        Span<int> results = stackalloc int[want];
        results.Fill(-Interop.EAGAIN); // a read the kernel never ran (a failed submit) found nothing
        ring.SubmitAndWait(out _);
        while (ring.TryComplete(out uint i, out int res))
            if (i < (uint)want) results[(int)i] = res;
        int count = 0, found = 0;
        for (int i = 0; i < want; i++)
        {
            int n = results[i];
            if (n < 0 && n != -Interop.EAGAIN && n != -Interop.EINTR) _gone = true; // the device went away (-EBADFD)
            if (n <= hdr) continue; // -EAGAIN (or the device going away)
            found++;
            if (i != count) // a frame arrived after an earlier read found the queue empty: close the gap, keep the order
                new ReadOnlySpan<byte>(bufs[i].Pointer + offset - hdr, n).CopyTo(new Span<byte>(bufs[count].Pointer + offset - hdr, n));
            if (hdr == 0) offloads[count] = default;
            else if (!VirtioNetHeader.TryRead(bufs[count].Span.Slice(offset - hdr, hdr), out offloads[count]))
                continue; // a GSO type never enabled (UFO/USO): cannot happen; skip the frame
            sizes[count++] = n - hdr;
        }
        more = found == want;
        _ringReads = more ? Math.Min(want * 2, 1 << 16) : found <= 1 ? found : found * 2;
        return count;
    }

    public bool Write(ReadOnlySpan<byte> frame)
    {
        if (!SupportsOffload) return WriteRaw(frame, default, 0);
        return WriteRaw(frame, default, VirtioNetHeader.Length);
    }

    public bool WriteOffload(ReadOnlySpan<byte> frame, in OffloadInfo info) =>
        SupportsOffload && WriteRaw(frame, info, VirtioNetHeader.Length);

    private bool WriteRaw(ReadOnlySpan<byte> frame, in OffloadInfo info, int hdrLength)
    {
        byte* hdr = stackalloc byte[VirtioNetHeader.Length];
        if (hdrLength > 0) VirtioNetHeader.Write(new Span<byte>(hdr, VirtioNetHeader.Length), info);
        fixed (byte* p = frame)
        {
            Interop.IoVec* iov = stackalloc Interop.IoVec[2];
            iov[0] = new Interop.IoVec { Base = hdr, Length = (nuint)hdrLength };
            iov[1] = new Interop.IoVec { Base = p, Length = (nuint)frame.Length };
            while (true)
            {
                nint n = hdrLength == 0
                    ? Interop.Libc.write(_fd, p, frame.Length)
                    : Interop.Libc.writev(_fd, iov, 2);
                if (n == hdrLength + frame.Length) return true;
                if (n < 0 && Marshal.GetLastPInvokeError() == Interop.EINTR) continue;
                return false;
            }
        }
    }

    public void Dispose()
    {
        for (int q = 1; q < _queues.Length; q++) _queues[q]._handle.Dispose();
        _handle.Dispose();
    }
}
