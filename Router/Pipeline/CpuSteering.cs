using System.Runtime.InteropServices;

namespace UserOverlay.Router.Pipeline;

/// <summary>
/// Keeps a packet on the CPU it arrived on, as the kernel's own receive path does: with several queues,
/// queue <c>i</c> has one worker pinned to CPU <c>i</c>, and both edges hand a packet to the queue of the
/// CPU that produced it —
/// <list type="bullet">
/// <item>the UDP sockets form an SO_REUSEPORT group whose classic BPF program picks socket <c>cpu % queues</c>
/// (the CPU running the receive softirq);</item>
/// <item>a multi-queue TAP gets a two-instruction eBPF steering program (TUNSETSTEERINGEBPF) that returns the
/// sending CPU, which the tun driver takes modulo its queue count.</item>
/// </list>
/// Why: waking a worker on another CPU is the most expensive step of a userspace hop on a virtual machine (an
/// inter-processor interrupt to a halted vCPU). Measured on the 2-vCPU test VM, one hop's wake-up across vCPUs
/// cost more than all the forwarding work; a worker woken on the CPU that is already running the sender starts
/// as soon as the sender blocks. Each worker also adds a core for throughput.
/// </summary>
internal static unsafe class CpuSteering
{
    /// <summary>Most queues (workers) a router opens when asked for one per CPU.</summary>
    public const int MaxAutoQueues = 16;

    private const nuint TUNSETSTEERINGEBPF = 0x800454e0; // _IOR('T', 224, int)

    /// <summary>
    /// Frames and datagrams longer than this are bulk data (full-size segments, TCP super-frames): they go to the
    /// next CPU's queue rather than the sender's, so a single stream is pipelined over two cores instead of queuing
    /// behind its own sender. Small ones (pings, ACKs, requests) stay on the sender's CPU, where latency is lowest.
    /// </summary>
    public const uint BulkBytes = 512;

    /// <summary>The CPUs this process may run on (sched_getaffinity), ascending; empty when unknown.</summary>
    public static int[] AllowedCpus()
    {
        const int Words = 16; // 1,024 CPUs
        ulong* mask = stackalloc ulong[Words];
        if (Interop.Libc.sched_getaffinity(0, (nuint)(Words * sizeof(ulong)), mask) != 0) return [];
        var cpus = new List<int>();
        for (int w = 0; w < Words; w++)
            for (int b = 0; b < 64; b++)
                if ((mask[w] & (1UL << b)) != 0) cpus.Add(w * 64 + b);
        return [.. cpus];
    }

    /// <summary>
    /// Queues for a request of <paramref name="requested"/> (0: one per CPU up to the highest CPU this process
    /// may use, at most <see cref="MaxAutoQueues"/>; both steering programs map CPU <c>c</c> to queue <c>c % queues</c>).
    /// </summary>
    public static int QueueCount(int requested)
    {
        if (requested > 0) return requested;
        int[] cpus = AllowedCpus();
        return cpus.Length == 0 ? 1 : Math.Clamp(cpus[^1] + 1, 1, MaxAutoQueues);
    }

    /// <summary>Pins the calling thread to <paramref name="cpu"/>; false (and nothing changed) when the process may not use it.</summary>
    public static bool PinCurrentThread(int cpu)
    {
        const int Words = 16;
        if (cpu < 0 || cpu >= Words * 64) return false;
        ulong* mask = stackalloc ulong[Words];
        new Span<ulong>(mask, Words).Clear();
        mask[cpu / 64] = 1UL << (cpu % 64);
        return Interop.Libc.sched_setaffinity(0, (nuint)(Words * sizeof(ulong)), mask) == 0;
    }

    /// <summary>
    /// Makes the SO_REUSEPORT group of <paramref name="fd"/> (bound, in queue order) deliver a small datagram to socket
    /// <c>cpu % queues</c> and a large one (bulk data) to the next CPU's socket (see <see cref="BulkBytes"/>).
    /// Returns false with errno set when the kernel refuses.
    /// </summary>
    public static bool AttachReusePortCpuProgram(int fd, int queues)
    {
        const uint Cpu = unchecked((uint)(-0x1000 + 36));                                         // SKF_AD_OFF + SKF_AD_CPU
        Interop.SockFilter* code = stackalloc Interop.SockFilter[8];
        code[0] = new Interop.SockFilter { Code = 0x80 };                                          // ld len (the UDP payload)
        code[1] = new Interop.SockFilter { Code = 0x25, Jt = 0, Jf = 3, K = BulkBytes };           // jgt #BulkBytes, 2, 5
        code[2] = new Interop.SockFilter { Code = 0x20, K = Cpu };                                 // ld [cpu]
        code[3] = new Interop.SockFilter { Code = 0x04, K = 1 };                                   // add #1
        code[4] = new Interop.SockFilter { Code = 0x05, K = 1 };                                   // ja 6
        code[5] = new Interop.SockFilter { Code = 0x20, K = Cpu };                                 // ld [cpu]
        code[6] = new Interop.SockFilter { Code = 0x94, K = (uint)queues };                        // mod #queues
        code[7] = new Interop.SockFilter { Code = 0x16 };                                          // ret a
        Interop.SockFProg prog = new() { Length = 8, Filter = code };
        return Interop.Libc.setsockopt(fd, Interop.SOL_SOCKET, Interop.SO_ATTACH_REUSEPORT_CBPF, &prog, (uint)sizeof(Interop.SockFProg)) == 0;
    }

    /// <summary>
    /// Gives the multi-queue TAP behind <paramref name="tapFd"/> a steering program that returns the current CPU
    /// (<c>call bpf_get_smp_processor_id; exit</c>), so a frame the endpoint sends lands in that CPU's queue.
    /// Returns false with errno set when the kernel refuses (no eBPF: the tun driver then spreads flows by hash,
    /// which is still correct, only not CPU-local).
    /// </summary>
    public static bool AttachTapCpuProgram(int tapFd)
    {
        long* insns = stackalloc long[6];
        insns[0] = 0xbf | (6L << 8) | (1L << 12);        // r6 = r1 (the __sk_buff)
        insns[1] = 0x85 | (8L << 32);                    // call bpf_get_smp_processor_id
        insns[2] = 0x61 | (2L << 8) | (6L << 12);        // r2 = *(u32 *)(r6 + 0): __sk_buff.len
        insns[3] = 0xb5 | (2L << 8) | (1L << 16) | ((long)BulkBytes << 32); // if r2 <= BulkBytes goto +1
        insns[4] = 0x07 | (1L << 32);                    // r0 += 1
        insns[5] = 0x95;                                 // exit
        byte* license = stackalloc byte[4] { (byte)'G', (byte)'P', (byte)'L', 0 };
        byte* attr = stackalloc byte[128]; // union bpf_attr for BPF_PROG_LOAD; the rest must be zero
        new Span<byte>(attr, 128).Clear();
        *(uint*)attr = 1;                  // prog_type = BPF_PROG_TYPE_SOCKET_FILTER
        *(uint*)(attr + 4) = 6;            // insn_cnt
        *(ulong*)(attr + 8) = (ulong)insns;
        *(ulong*)(attr + 16) = (ulong)license;
        nint bpf = RuntimeInformation.ProcessArchitecture switch
        {
            Architecture.X64 => 321,
            Architecture.Arm64 => 280,
            _ => -1,
        };
        if (bpf < 0) return false;
        int prog = (int)Interop.Libc.syscall(bpf, 5 /* BPF_PROG_LOAD */, (nint)attr, 128);
        if (prog < 0) return false;
        try { return Interop.Libc.ioctl(tapFd, TUNSETSTEERINGEBPF, &prog) == 0; }
        finally { Interop.Libc.close(prog); } // the device holds its own reference
    }
}
