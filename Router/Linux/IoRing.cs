using System.Runtime.InteropServices;

namespace UserOverlay.Router.Linux;

/// <summary>
/// A minimal io_uring (Linux 5.6+; raw system calls, no liburing) with which one pipeline worker batches its TAP
/// reads and writes: a TAP has no recvmmsg/sendmmsg, so without it every frame costs a read(2) or write(2), and a
/// system call is dear where the kernel isolates its page tables (PTI) on a CPU without PCID — on the VM this was
/// built on, 64 frames cost 56 µs as reads and 8 µs as one io_uring_enter, 150 µs as writes and 48 µs through the
/// ring. Every operation here completes during the enter call that submits it (reads carry RWF_NOWAIT, so an empty
/// queue answers -EAGAIN instead of leaving a read pending), which keeps the model the worker already has: buffers
/// are the worker's again when <see cref="SubmitAndWait"/> returns.
/// <para>Single-threaded: created, used and disposed by one thread (IORING_SETUP_SINGLE_ISSUER). Nothing allocates
/// after <see cref="TryCreate"/>.</para>
/// </summary>
internal sealed unsafe class IoRing : IDisposable
{
    private const int SysSetup = 425, SysEnter = 426; // the same number on every architecture (asm-generic)
    private const uint SetupSingleIssuer = 1u << 12, SetupClamp = 1u << 4;
    private const uint FeatSingleMmap = 1u << 0, FeatNoDrop = 1u << 1;
    private const uint EnterGetEvents = 1u << 0;
    private const long OffSqRing = 0, OffSqes = 0x10000000;
    private const byte OpRead = 22, OpWrite = 23, OpWritev = 2;
    private const uint RwfNoWait = 0x08;
    private const int ProtRead = 1, ProtWrite = 2, MapShared = 1, MapPopulate = 0x8000;

    [StructLayout(LayoutKind.Sequential)]
    private struct Params
    {
        public uint SqEntries, CqEntries, Flags, SqThreadCpu, SqThreadIdle, Features, WqFd, Resv0, Resv1, Resv2;
        public uint SqHead, SqTail, SqRingMask, SqRingEntries, SqFlags, SqDropped, SqArray, SqResv1;
        public ulong SqUserAddr;
        public uint CqHead, CqTail, CqRingMask, CqRingEntries, CqOverflow, CqCqes, CqFlags, CqResv1;
        public ulong CqUserAddr;
    }

    [StructLayout(LayoutKind.Sequential, Size = 64)]
    private struct Sqe
    {
        public byte Opcode, Flags;
        public ushort IoPrio;
        public int Fd;
        public ulong Offset, Address;
        public uint Length, RwFlags;
        public ulong UserData;
    }

    [StructLayout(LayoutKind.Sequential)]
    private struct Cqe
    {
        public ulong UserData;
        public int Result;
        public uint Flags;
    }

    private readonly int _fd;
    private readonly byte* _ring;
    private readonly nuint _ringSize;
    private readonly Sqe* _sqes;
    private readonly nuint _sqesSize;
    private readonly uint* _sqTail, _cqHead, _cqTail;
    private readonly uint _sqMask, _cqMask;
    private readonly Cqe* _cqes;
    private uint _tail;     // the next submission slot (ours until published)
    private uint _prepared; // prepared since the last submit
    private uint _generation = 1; // of the batch being prepared: user data is (generation << 32) | index
    private uint _completing;     // the generation the last SubmitAndWait submitted; older completions are ignored
    private bool _disposed;

    private IoRing(int fd, byte* ring, nuint ringSize, Sqe* sqes, nuint sqesSize, in Params p)
    {
        _fd = fd;
        _ring = ring;
        _ringSize = ringSize;
        _sqes = sqes;
        _sqesSize = sqesSize;
        _sqTail = (uint*)(ring + p.SqTail);
        _sqMask = *(uint*)(ring + p.SqRingMask);
        _cqHead = (uint*)(ring + p.CqHead);
        _cqTail = (uint*)(ring + p.CqTail);
        _cqMask = *(uint*)(ring + p.CqRingMask);
        _cqes = (Cqe*)(ring + p.CqCqes);
        Capacity = p.SqEntries;
        _tail = *_sqTail;
        uint* array = (uint*)(ring + p.SqArray);
        for (uint i = 0; i < p.SqEntries; i++) array[i] = i; // slot i of the ring submits SQE i, always
    }

    /// <summary>Operations that can be prepared before a submit.</summary>
    public uint Capacity { get; }

    /// <summary>Operations prepared and not yet submitted.</summary>
    public uint Prepared => _prepared;

    /// <summary>
    /// Sets up a ring of <paramref name="entries"/> submissions (the completion ring is twice that). Null, with the
    /// reason in <paramref name="why"/>, where the kernel has no io_uring, refuses it (kernel.io_uring_disabled, a
    /// container's seccomp profile) or lacks what this needs; the caller then uses one system call per frame.
    /// </summary>
    public static IoRing? TryCreate(uint entries, out string? why)
    {
        Params p = default;
        p.Flags = SetupSingleIssuer | SetupClamp;
        int fd = (int)Interop.Libc.syscall(SysSetup, (nint)entries, (nint)(&p), 0, 0, 0, 0);
        if (fd < 0 && Marshal.GetLastPInvokeError() == Interop.EINVAL)
        {
            p = default; // a kernel before 6.0 does not know SINGLE_ISSUER
            p.Flags = SetupClamp;
            fd = (int)Interop.Libc.syscall(SysSetup, (nint)entries, (nint)(&p), 0, 0, 0, 0);
        }
        if (fd < 0)
        {
            int errno = Marshal.GetLastPInvokeError();
            why = errno switch
            {
                Interop.ENOSYS => "the kernel has no io_uring",
                Interop.EPERM or Interop.EACCES => "io_uring is not permitted here (kernel.io_uring_disabled or a seccomp profile)",
                _ => $"io_uring_setup: {Interop.ErrorText(errno)}",
            };
            return null;
        }
        if ((p.Features & FeatSingleMmap) == 0 || (p.Features & FeatNoDrop) == 0)
        {
            Interop.Libc.close(fd);
            why = "the kernel's io_uring is older than 5.5 (no single mapping)";
            return null;
        }
        nuint ringSize = Math.Max(p.SqArray + p.SqEntries * sizeof(uint), p.CqCqes + p.CqEntries * (uint)sizeof(Cqe));
        nuint sqesSize = p.SqEntries * (uint)sizeof(Sqe);
        byte* ring = (byte*)Interop.Libc.mmap(null, ringSize, ProtRead | ProtWrite, MapShared | MapPopulate, fd, OffSqRing);
        if (ring == (byte*)-1)
        {
            why = $"mmap of the io_uring rings: {Interop.ErrorText(Marshal.GetLastPInvokeError())}";
            Interop.Libc.close(fd);
            return null;
        }
        var sqes = (Sqe*)Interop.Libc.mmap(null, sqesSize, ProtRead | ProtWrite, MapShared | MapPopulate, fd, OffSqes);
        if (sqes == (Sqe*)-1)
        {
            why = $"mmap of the io_uring submissions: {Interop.ErrorText(Marshal.GetLastPInvokeError())}";
            Interop.Libc.munmap(ring, ringSize);
            Interop.Libc.close(fd);
            return null;
        }
        why = null;
        return new IoRing(fd, ring, ringSize, sqes, sqesSize, p);
    }

    /// <summary>Prepares a read of up to <paramref name="length"/> bytes that completes at once: with data, or -EAGAIN.</summary>
    public void PrepareRead(int fd, byte* buffer, uint length, uint index) =>
        Prepare(OpRead, fd, (ulong)buffer, length, RwfNoWait, index);

    /// <summary>Prepares a write of one buffer.</summary>
    public void PrepareWrite(int fd, byte* buffer, uint length, uint index) =>
        Prepare(OpWrite, fd, (ulong)buffer, length, 0, index);

    /// <summary>Prepares a vectored write; the iovecs must stay in place until <see cref="SubmitAndWait"/> returns.</summary>
    public void PrepareWritev(int fd, Interop.IoVec* iov, uint count, uint index) =>
        Prepare(OpWritev, fd, (ulong)iov, count, 0, index);

    // index: the caller's number for the operation within this batch, given back by TryComplete.
    private void Prepare(byte op, int fd, ulong address, uint length, uint rwFlags, uint index)
    {
        if (_prepared == Capacity) throw new InvalidOperationException("io_uring submission ring is full: submit first");
        Sqe* s = _sqes + (_tail & _sqMask);
        *s = default;
        s->Opcode = op;
        s->Fd = fd;
        s->Address = address;
        s->Length = length;
        s->RwFlags = rwFlags;
        s->UserData = ((ulong)_generation << 32) | index;
        _tail++;
        _prepared++;
    }

    /// <summary>
    /// Submits everything prepared and waits until all of it has completed (one io_uring_enter, more only if a signal
    /// interrupts it). Read the results with <see cref="TryComplete"/>. Returns false when the kernel refused the
    /// submission itself (the errno in <paramref name="errno"/>); the prepared operations are then dropped.
    /// </summary>
    public bool SubmitAndWait(out int errno)
    {
        errno = 0;
        uint toSubmit = _prepared;
        if (toSubmit == 0) return true;
        Volatile.Write(ref *_sqTail, _tail); // publish the SQEs (release)
        _prepared = 0;
        _completing = _generation++;
        uint waitFor = toSubmit;
        int transient = 0;
        while (true)
        {
            uint ready = Volatile.Read(ref *_cqTail) - *_cqHead;
            uint min = ready >= waitFor ? 0 : waitFor - ready;
            nint n = Interop.Libc.syscall(SysEnter, _fd, (nint)toSubmit, (nint)min, (nint)EnterGetEvents, 0, 0);
            if (n >= 0)
            {
                toSubmit -= (uint)n;
                if (toSubmit == 0 && Volatile.Read(ref *_cqTail) - *_cqHead >= waitFor) return true;
                continue;
            }
            errno = Marshal.GetLastPInvokeError();
            if (errno == Interop.EINTR) continue;
            // EAGAIN (no memory for a request) or EBUSY (completions overflowing) are transient; a few tries, then give
            // up on what is not submitted rather than stall the worker.
            if (errno is Interop.EAGAIN or Interop.EBUSY && ++transient < 100) { Thread.Yield(); continue; }
            // Refused outright (cannot happen with valid SQEs): take the unsubmitted ones back.
            _tail -= toSubmit;
            Volatile.Write(ref *_sqTail, _tail);
            return false;
        }
    }

    /// <summary>
    /// Takes the next completion of the batch the last <see cref="SubmitAndWait"/> submitted: the index it was prepared
    /// with and its result (bytes, or a negative errno). Completions of earlier batches (only possible after a failed
    /// submit) are skipped. Call until false after every submit, whatever it returned.
    /// </summary>
    public bool TryComplete(out uint index, out int result)
    {
        while (true)
        {
            uint head = *_cqHead;
            if (head == Volatile.Read(ref *_cqTail)) { index = 0; result = 0; return false; }
            Cqe* c = _cqes + (head & _cqMask);
            ulong data = c->UserData;
            result = c->Result;
            Volatile.Write(ref *_cqHead, head + 1);
            if ((uint)(data >> 32) != _completing) continue;
            index = (uint)data;
            return true;
        }
    }

    public void Dispose()
    {
        if (_disposed) return;
        _disposed = true;
        Interop.Libc.munmap(_sqes, _sqesSize);
        Interop.Libc.munmap(_ring, _ringSize);
        Interop.Libc.close(_fd);
    }
}
