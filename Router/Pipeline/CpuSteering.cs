using System.Runtime.InteropServices;

namespace UserOverlay.Router.Pipeline;

/// <summary>
/// Keeps a packet on the CPU it arrived on, as the kernel's own receive path does: with several queues,
/// queue <c>i</c> has one worker pinned to CPU <c>i</c>, and both edges hand a packet to the queue of the
/// CPU that produced it —
/// <list type="bullet">
/// <item>the UDP sockets form an SO_REUSEPORT group whose BPF program picks socket <c>cpu % queues</c>
/// (the CPU running the receive softirq) — until that CPU has taken <see cref="SpillThreshold"/> small datagrams in
/// the current millisecond: a flood spills over to the next CPU's socket, so the cores share it;</item>
/// <item>a multi-queue TAP gets a small eBPF steering program (TUNSETSTEERINGEBPF) that returns the sending CPU
/// (the next one for bulk), which the tun driver takes modulo its queue count;</item>
/// <item>the raw ESP sockets (one per queue, each seeing every packet) get socket filters that keep the packets the
/// socket group's rule, spilling included, gives their queue (<see cref="AttachQueueFilter"/>).</item>
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
    /// <c>cpu % queues</c> and a large one (bulk data) to the next CPU's socket (see <see cref="BulkBytes"/>); past
    /// <see cref="SpillThreshold"/> small datagrams per millisecond on one CPU, the rest of that millisecond's go to the
    /// next CPU's socket too (an eBPF program, <see cref="LoadSpillingProgram"/>; where eBPF is refused, a classic one
    /// without the spilling). Returns false with errno set when the kernel refuses both.
    /// </summary>
    public static bool AttachReusePortCpuProgram(int fd, int queues)
    {
        int eprog = LoadSpillingProgram(queues);
        if (eprog >= 0)
        {
            try
            {
                if (Interop.Libc.setsockopt(fd, Interop.SOL_SOCKET, Interop.SO_ATTACH_REUSEPORT_EBPF, &eprog, sizeof(int)) == 0) return true;
            }
            finally { Interop.Libc.close(eprog); } // the socket group holds its own reference
        }
        // No eBPF here (a kernel without it, or not allowed): the classic program, the same rule without spilling.
        Interop.SockFilter* code = stackalloc Interop.SockFilter[8];
        int n = WriteClassicQueueRule(code, queues);
        code[n] = new Interop.SockFilter { Code = 0x16 };                                          // ret a
        Interop.SockFProg prog = new() { Length = (ushort)(n + 1), Filter = code };
        return Interop.Libc.setsockopt(fd, Interop.SOL_SOCKET, Interop.SO_ATTACH_REUSEPORT_CBPF, &prog, (uint)sizeof(Interop.SockFProg)) == 0;
    }

    /// <summary>
    /// Writes the steering rule in classic BPF at <paramref name="code"/> — A = <c>cpu % queues</c> for a small packet,
    /// <c>(cpu + 1) % queues</c> for bulk (over <see cref="BulkBytes"/>; <c>len</c> is the UDP payload for a socket group,
    /// the IP packet for a raw socket) — and returns the number of instructions written (7).
    /// </summary>
    private static int WriteClassicQueueRule(Interop.SockFilter* code, int queues)
    {
        const uint Cpu = unchecked((uint)(-0x1000 + 36));                                         // SKF_AD_OFF + SKF_AD_CPU
        code[0] = new Interop.SockFilter { Code = 0x80 };                                          // ld len
        code[1] = new Interop.SockFilter { Code = 0x25, Jt = 0, Jf = 3, K = BulkBytes };           // jgt #BulkBytes, 2, 5
        code[2] = new Interop.SockFilter { Code = 0x20, K = Cpu };                                 // ld [cpu]
        code[3] = new Interop.SockFilter { Code = 0x04, K = 1 };                                   // add #1
        code[4] = new Interop.SockFilter { Code = 0x05, K = 1 };                                   // ja 6
        code[5] = new Interop.SockFilter { Code = 0x20, K = Cpu };                                 // ld [cpu]
        code[6] = new Interop.SockFilter { Code = 0x94, K = (uint)queues };                        // mod #queues
        return 7;
    }

    /// <summary>
    /// Gives a raw socket (ESP in transport mode, one per queue: each gets its own copy of every packet) a filter that
    /// keeps only the packets steered to queue <paramref name="queue"/> — the VXLAN socket group's rule, spilling
    /// included: <c>cpu % queues</c> for a small packet, <c>(cpu + 1) % queues</c> for bulk (over
    /// <see cref="BulkBytes"/>) and for the small ones past <see cref="SpillThreshold"/> in a CPU's window. Spilling
    /// needs every socket's filter to reach the same decision for a packet while only one of them may count it: the
    /// first filter to see a packet (its SPI and sequence number differ from the last packet's on this CPU) decides
    /// and records the decision in a per-CPU map the others read (<see cref="LoadRawQueueProgram"/>; one packet's
    /// filters all run on one CPU, one after another, in its receive softirq). Where eBPF is refused, a classic
    /// filter with the same rule without spilling. Returns false with errno set when the kernel refuses both.
    /// </summary>
    public static bool AttachQueueFilter(int fd, int queue, int queues)
    {
        int eprog = LoadRawQueueProgram(queue, queues);
        if (eprog >= 0)
        {
            try
            {
                if (Interop.Libc.setsockopt(fd, Interop.SOL_SOCKET, Interop.SO_ATTACH_BPF, &eprog, sizeof(int)) == 0) return true;
            }
            finally { Interop.Libc.close(eprog); } // the socket holds its own reference
        }
        Interop.SockFilter* code = stackalloc Interop.SockFilter[10];
        int n = WriteClassicQueueRule(code, queues);                                               // A = the packet's queue
        code[n] = new Interop.SockFilter { Code = 0x15, Jt = 0, Jf = 1, K = (uint)queue };         // jeq #queue, keep, drop
        code[n + 1] = new Interop.SockFilter { Code = 0x06, K = 0x40000 };                         // ret #262144 (keep it whole)
        code[n + 2] = new Interop.SockFilter { Code = 0x06, K = 0 };                               // ret #0 (not ours)
        Interop.SockFProg prog = new() { Length = (ushort)(n + 3), Filter = code };
        return Interop.Libc.setsockopt(fd, Interop.SOL_SOCKET, Interop.SO_ATTACH_FILTER, &prog, (uint)sizeof(Interop.SockFProg)) == 0;
    }

    private static int _rawDecisionMap = -1; // shared by every raw ESP socket's filter in this process (see below)
    private static readonly Lock RawDecisionMapLock = new();

    /// <summary>
    /// The raw sockets' filter for queue <paramref name="queue"/> as an eBPF socket filter (packet at its IP header):
    /// <code>
    /// if len > BulkBytes: target = cpu + 1
    /// else if len &lt; ihl + 8: target = cpu                      // no SPI and sequence number: the worker counts it
    /// else:
    ///     key = spi &lt;&lt; 32 | seq;  s = this CPU's slot (a per-CPU array)
    ///     if key == s.key: target = s.target                    // another socket's filter decided for this packet
    ///     else: s.key = key; window as the socket group's; s.target = count > threshold ? cpu + 1 : cpu
    /// return target % queues == queue ? keep : drop
    /// </code>
    /// The slot is shared by all the process's raw ESP filters (one map, created once): decisions stay consistent
    /// per packet whoever shares it, since nothing else runs on that CPU between one packet's filters; routers in one
    /// process only share the flood count. A repeated packet (same SPI and sequence) gets the last decision again,
    /// still one socket's. Returns the program's fd, or -1 (errno set) when the kernel refuses.
    /// </summary>
    private static int LoadRawQueueProgram(int queue, int queues, int threshold = SpillThreshold)
    {
        if (BpfSyscall < 0 || queues < 2) return -1;
        int map;
        lock (RawDecisionMapLock)
        {
            if (_rawDecisionMap < 0) _rawDecisionMap = CreatePerCpuMap(32); // { start_ns, count, key, target }
            map = _rawDecisionMap;
        }
        if (map < 0) return -1;
        var insns = new List<long>(64);
        EmitCpuAndSlot(insns, map, out int toBulk, out int toLocal1); // r6 = skb (LD_ABS/LD_IND read through it), r7 = cpu, r8 = &slot
        insns.Add(I(0x30, imm: 0));                            // r0 = packet[0] (LD_ABS, byte)
        insns.Add(I(0x57, dst: 0, imm: 0xf));                  // r0 &= 0xf
        insns.Add(I(0x67, dst: 0, imm: 2));                    // r0 <<= 2: the IP header's length
        insns.Add(I(0xbf, dst: 9, src: 0));                    // r9 = ihl
        insns.Add(I(0x61, dst: 2, src: 6));                    // r2 = skb->len (LD_ABS clobbered r1-r5)
        insns.Add(I(0xbf, dst: 1, src: 9));                    // r1 = ihl + 8
        insns.Add(I(0x07, dst: 1, imm: 8));
        int toLocal2 = insns.Count; insns.Add(0);              // if r2 < r1 goto local
        insns.Add(I(0x40, src: 9, imm: 0));                    // r0 = ntohl(packet[ihl..]): the SPI (LD_IND, word)
        insns.Add(I(0x67, dst: 0, imm: 32));                   // r0 <<= 32
        insns.Add(I(0x7b, dst: 10, src: 0, off: -16));         // *(u64 *)(r10 - 16) = r0
        insns.Add(I(0x40, src: 9, imm: 4));                    // r0 = the sequence number
        insns.Add(I(0x79, dst: 1, src: 10, off: -16));         // r1 = spi << 32
        insns.Add(I(0x4f, dst: 0, src: 1));                    // r0 |= r1: the packet's key
        insns.Add(I(0x79, dst: 1, src: 8, off: 16));           // r1 = slot.key
        int toReuse = insns.Count; insns.Add(0);               // if r0 == r1 goto reuse
        insns.Add(I(0x7b, dst: 8, src: 0, off: 16));           // slot.key = r0: this filter decides
        int toSpill = EmitFloodWindow(insns);                  // counts the packet; falls through: stay
        insns.Add(I(0xbf, dst: 0, src: 7));                    // r0 = cpu
        int toStore1 = insns.Count; insns.Add(0);              // goto store
        int spill = insns.Count;
        insns.Add(I(0xbf, dst: 0, src: 7));                    // r0 = cpu + 1
        insns.Add(I(0x07, dst: 0, imm: 1));
        int store = insns.Count;
        insns.Add(I(0x7b, dst: 8, src: 0, off: 24));           // slot.target = r0
        int toDecide1 = insns.Count; insns.Add(0);             // goto decide
        int reuse = insns.Count;
        insns.Add(I(0x79, dst: 0, src: 8, off: 24));           // r0 = slot.target
        int toDecide2 = insns.Count; insns.Add(0);             // goto decide
        int local = insns.Count;
        insns.Add(I(0xbf, dst: 0, src: 7));                    // r0 = cpu
        int toDecide3 = insns.Count; insns.Add(0);             // goto decide
        int bulk = insns.Count;
        insns.Add(I(0xbf, dst: 0, src: 7));                    // r0 = cpu + 1
        insns.Add(I(0x07, dst: 0, imm: 1));
        int decide = insns.Count;
        insns.Add(I(0x97, dst: 0, imm: queues));               // r0 %= queues
        int toKeep = insns.Count; insns.Add(0);                // if r0 == queue goto keep
        insns.Add(I(0xb7, dst: 0, imm: 0));                    // return 0: not this socket's
        insns.Add(I(0x95));
        int keep = insns.Count;
        insns.Add(I(0xb7, dst: 0, imm: 0x40000));              // return 262144: keep it whole
        insns.Add(I(0x95));
        insns[toBulk] = I(0x25, dst: 2, off: bulk - toBulk - 1, imm: (int)BulkBytes);       // jgt imm
        insns[toLocal1] = I(0x15, dst: 0, off: local - toLocal1 - 1);                       // jeq r0, 0
        insns[toLocal2] = I(0xad, dst: 2, src: 1, off: local - toLocal2 - 1);               // jlt r2, r1
        insns[toReuse] = I(0x1d, dst: 0, src: 1, off: reuse - toReuse - 1);                 // jeq r0, r1
        insns[toSpill] = I(0x25, dst: 1, off: spill - toSpill - 1, imm: threshold);         // jgt imm
        insns[toStore1] = I(0x05, off: store - toStore1 - 1);
        insns[toDecide1] = I(0x05, off: decide - toDecide1 - 1);
        insns[toDecide2] = I(0x05, off: decide - toDecide2 - 1);
        insns[toDecide3] = I(0x05, off: decide - toDecide3 - 1);
        insns[toKeep] = I(0x15, dst: 0, off: keep - toKeep - 1, imm: queue);                // jeq imm
        return LoadSocketFilter(insns);
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
        if (BpfSyscall < 0) return false;
        int prog = (int)Interop.Libc.syscall(BpfSyscall, 5 /* BPF_PROG_LOAD */, (nint)attr, 128);
        if (prog < 0) return false;
        try { return Interop.Libc.ioctl(tapFd, TUNSETSTEERINGEBPF, &prog) == 0; }
        finally { Interop.Libc.close(prog); } // the device holds its own reference
    }

    /// <summary>
    /// Small datagrams a CPU's socket takes per <see cref="SpillWindowNs"/> before the rest of the window's go to the
    /// next CPU's (16 per ms: 16,000 a second). Below that rate — pings, requests, a TCP stream's ACKs at modest
    /// rates — everything stays on the CPU it arrived on; a flood spills.
    /// </summary>
    public const int SpillThreshold = 16;

    /// <summary>The window <see cref="SpillThreshold"/> counts in: 1 ms.</summary>
    public const long SpillWindowNs = 1_000_000;

    private static nint BpfSyscall => RuntimeInformation.ProcessArchitecture switch
    {
        Architecture.X64 => 321,
        Architecture.Arm64 => 280,
        _ => -1,
    };

    /// <summary>
    /// The rule as an eBPF socket-filter program for the SO_REUSEPORT group (its result is the socket's index):
    /// <code>
    /// if len > BulkBytes: return (cpu + 1) % queues
    /// w = this CPU's window (a per-CPU array): if now - w.start > 1 ms: w = { now, 0 }
    /// if ++w.count > threshold: return (cpu + 1) % queues   // a flood: spill to the next CPU
    /// return cpu % queues
    /// </code>
    /// Why: kept on one CPU, a flood of small datagrams puts the sender, both routers' workers and the receiver on the
    /// sender's CPU while the other cores idle; on the 2-vCPU test machine 64-byte UDP delivered 51 kpps that way and
    /// ~90–100 kpps with spilling, while pings (far below the threshold) keep their CPU-local round trip.
    /// Returns the program's fd, or -1 (errno set) when the kernel refuses (no eBPF, or not permitted).
    /// </summary>
    private static int LoadSpillingProgram(int queues, int threshold = SpillThreshold)
    {
        if (BpfSyscall < 0 || queues < 2) return -1;
        int map = CreatePerCpuMap(16); // { start_ns, count }
        if (map < 0) return -1;
        try
        {
            var insns = new List<long>(40);
            EmitCpuAndSlot(insns, map, out int toSpill1, out int toLocal1); // r7 = cpu, r8 = &window (the UDP payload's length: bulk spills)
            int toSpill2 = EmitFloodWindow(insns);                 // falls through: local
            int local = insns.Count;
            insns.Add(I(0xbf, dst: 0, src: 7));                    // r0 = cpu % queues
            insns.Add(I(0x97, dst: 0, imm: queues));
            insns.Add(I(0x95));                                    // exit
            int spill = insns.Count;
            insns.Add(I(0xbf, dst: 0, src: 7));                    // r0 = (cpu + 1) % queues
            insns.Add(I(0x07, dst: 0, imm: 1));
            insns.Add(I(0x97, dst: 0, imm: queues));
            insns.Add(I(0x95));
            insns[toSpill1] = I(0x25, dst: 2, off: spill - toSpill1 - 1, imm: (int)BulkBytes);   // jgt imm
            insns[toLocal1] = I(0x15, dst: 0, off: local - toLocal1 - 1);                        // jeq r0, 0
            insns[toSpill2] = I(0x25, dst: 1, off: spill - toSpill2 - 1, imm: threshold);        // jgt imm
            return LoadSocketFilter(insns);
        }
        finally { Interop.Libc.close(map); } // the program holds its own reference
    }

    /// <summary>
    /// Both socket filters' opening: r6 = the __sk_buff, r7 = this CPU, r2 = the packet's length, then this CPU's slot
    /// of the per-CPU array <paramref name="map"/> in r8. Leaves two jumps for the caller to fill in:
    /// <paramref name="toBulk"/> (taken when r2 &gt; BulkBytes, before the lookup) and <paramref name="toNoSlot"/> (r0 == 0).
    /// </summary>
    private static void EmitCpuAndSlot(List<long> insns, int map, out int toBulk, out int toNoSlot)
    {
        insns.Add(I(0xbf, dst: 6, src: 1));                    // r6 = r1 (the __sk_buff)
        insns.Add(I(0x85, imm: 8));                            // call bpf_get_smp_processor_id
        insns.Add(I(0xbf, dst: 7, src: 0));                    // r7 = cpu
        insns.Add(I(0x61, dst: 2, src: 6));                    // r2 = skb->len
        toBulk = insns.Count; insns.Add(0);                    // if r2 > BulkBytes goto (caller's)
        insns.Add(I(0x62, dst: 10, off: -4, imm: 0));          // *(u32 *)(r10 - 4) = 0 (the key)
        insns.Add(I(0xbf, dst: 2, src: 10));                   // r2 = r10
        insns.Add(I(0x07, dst: 2, imm: -4));                   // r2 += -4
        insns.Add(I(0x18, dst: 1, src: 1, imm: map));          // r1 = map (ld_imm64, BPF_PSEUDO_MAP_FD)
        insns.Add(0);
        insns.Add(I(0x85, imm: 1));                            // call bpf_map_lookup_elem
        toNoSlot = insns.Count; insns.Add(0);                  // if r0 == 0 goto (caller's)
        insns.Add(I(0xbf, dst: 8, src: 0));                    // r8 = &slot
    }

    /// <summary>
    /// Counts a packet in the flood window at r8 (<c>{ u64 start_ns; u64 count; }</c>): a window older than
    /// <see cref="SpillWindowNs"/> starts again at 1. Returns the index of the jump the caller fills in, taken with the
    /// count in r1 when it is past the threshold (spill); otherwise the code falls through past what this emitted (stay).
    /// </summary>
    private static int EmitFloodWindow(List<long> insns)
    {
        insns.Add(I(0x85, imm: 5));                            // call bpf_ktime_get_ns
        insns.Add(I(0x79, dst: 1, src: 8, off: 0));            // r1 = window.start
        insns.Add(I(0xbf, dst: 2, src: 0));                    // r2 = now - start
        insns.Add(I(0x1f, dst: 2, src: 1));
        int toReset = insns.Count; insns.Add(0);               // if r2 > window goto reset
        insns.Add(I(0x79, dst: 1, src: 8, off: 8));            // window.count += 1
        insns.Add(I(0x07, dst: 1, imm: 1));
        insns.Add(I(0x7b, dst: 8, src: 1, off: 8));
        int toSpill = insns.Count; insns.Add(0);               // if count > threshold goto (caller's spill)
        int toStay = insns.Count; insns.Add(0);                // goto stay
        int reset = insns.Count;
        insns.Add(I(0x7b, dst: 8, src: 0, off: 0));            // window.start = now
        insns.Add(I(0x7a, dst: 8, off: 8, imm: 1));            // window.count = 1
        insns[toReset] = I(0x25, dst: 2, off: reset - toReset - 1, imm: (int)SpillWindowNs); // jgt imm
        insns[toStay] = I(0x05, off: insns.Count - toStay - 1);                             // ja stay
        return toSpill;
    }

    /// <summary>One eBPF instruction: opcode, registers, offset, immediate.</summary>
    private static long I(int code, int dst = 0, int src = 0, int off = 0, int imm = 0) =>
        (long)(byte)code | ((long)(dst & 0xf) << 8) | ((long)(src & 0xf) << 12) | ((long)(ushort)(short)off << 16) | ((long)(uint)imm << 32);

    /// <summary>Loads <paramref name="insns"/> as a BPF_PROG_TYPE_SOCKET_FILTER program: its fd, or -1 with errno set.</summary>
    private static int LoadSocketFilter(List<long> insns)
    {
        long* code = stackalloc long[insns.Count];
        for (int i = 0; i < insns.Count; i++) code[i] = insns[i];
        byte* license = stackalloc byte[4] { (byte)'G', (byte)'P', (byte)'L', 0 };
        byte* attr = stackalloc byte[128]; // union bpf_attr for BPF_PROG_LOAD; the rest must be zero
        new Span<byte>(attr, 128).Clear();
        *(uint*)attr = 1;                  // prog_type = BPF_PROG_TYPE_SOCKET_FILTER
        *(uint*)(attr + 4) = (uint)insns.Count;
        *(ulong*)(attr + 8) = (ulong)code;
        *(ulong*)(attr + 16) = (ulong)license;
        return (int)Interop.Libc.syscall(BpfSyscall, 5 /* BPF_PROG_LOAD */, (nint)attr, 128);
    }

    /// <summary>A per-CPU array of one <paramref name="valueSize"/>-byte slot: its fd, or -1 with errno set.</summary>
    private static int CreatePerCpuMap(int valueSize)
    {
        byte* attr = stackalloc byte[128];
        new Span<byte>(attr, 128).Clear();
        *(uint*)attr = 6;                  // map_type = BPF_MAP_TYPE_PERCPU_ARRAY
        *(uint*)(attr + 4) = 4;            // key_size
        *(uint*)(attr + 8) = (uint)valueSize;
        *(uint*)(attr + 12) = 1;           // max_entries
        return (int)Interop.Libc.syscall(BpfSyscall, 0 /* BPF_MAP_CREATE */, (nint)attr, 128);
    }
}
