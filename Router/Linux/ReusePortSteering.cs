using System.Runtime.InteropServices;
using static UserOverlay.Router.Linux.BpfAssembler;
using static UserOverlay.Router.Linux.QueuePolicy;

namespace UserOverlay.Router.Linux;

/// <summary>
/// Steers the datagrams of an SO_REUSEPORT group of UDP sockets (one per queue) to the socket of the CPU they arrived
/// on, spilling a flood to the next CPU's (<see cref="QueuePolicy"/>).
/// </summary>
internal static unsafe class ReusePortSteering
{
    /// <summary>
    /// Makes the SO_REUSEPORT group of <paramref name="fd"/> (bound, in queue order) deliver a small datagram to socket
    /// <c>cpu % queues</c> and a large one (bulk data) to the next CPU's socket (see <see cref="QueuePolicy.BulkBytes"/>); past
    /// <see cref="QueuePolicy.SpillThreshold"/> small datagrams per millisecond on one CPU, the rest of that millisecond's go to the
    /// next CPU's socket too (an eBPF program, <see cref="LoadSpillingProgram"/>; where eBPF is refused, a classic one
    /// without the spilling). Returns false with errno set when the kernel refuses both.
    /// </summary>
    public static bool AttachCpuProgram(int fd, int queues)
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
        int n = SteeringRule.WriteClassic(code, queues);
        code[n] = new Interop.SockFilter { Code = 0x16 };                                          // ret a
        Interop.SockFProg prog = new() { Length = (ushort)(n + 1), Filter = code };
        return Interop.Libc.setsockopt(fd, Interop.SOL_SOCKET, Interop.SO_ATTACH_REUSEPORT_CBPF, &prog, (uint)sizeof(Interop.SockFProg)) == 0;
    }

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
        if (Bpf.Syscall < 0 || queues < 2) return -1;
        int map = Bpf.CreatePerCpuMap(16); // { start_ns, count }
        if (map < 0) return -1;
        try
        {
            var insns = new List<long>(40);
            SteeringRule.EmitCpuAndSlot(insns, map, out int toSpill1, out int toLocal1); // r7 = cpu, r8 = &window (the UDP payload's length: bulk spills)
            int toSpill2 = SteeringRule.EmitFloodWindow(insns);                 // falls through: local
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
            return Bpf.LoadSocketFilter(CollectionsMarshal.AsSpan(insns));
        }
        finally { Interop.Libc.close(map); } // the program holds its own reference
    }
}
