using System.Runtime.InteropServices;
using static UserOverlay.Router.Linux.BpfAssembler;
using static UserOverlay.Router.Linux.QueuePolicy;

namespace UserOverlay.Router.Linux;

/// <summary>
/// Gives each raw ESP socket of a queue group (every raw socket of a protocol receives its own copy of each packet) a
/// filter that keeps only the packets the steering rule gives its queue (<see cref="QueuePolicy"/>).
/// </summary>
internal static unsafe class RawEspSteering
{
    /// <summary>
    /// Gives a raw socket (ESP in transport mode, one per queue: each gets its own copy of every packet) a filter that
    /// keeps only the packets steered to queue <paramref name="queue"/> — the VXLAN socket group's rule, spilling
    /// included: <c>cpu % queues</c> for a small packet, <c>(cpu + 1) % queues</c> for bulk (over
    /// <see cref="QueuePolicy.BulkBytes"/>) and for the small ones past <see cref="QueuePolicy.SpillThreshold"/> in a CPU's window. Spilling
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
        int n = SteeringRule.WriteClassic(code, queues);                                               // A = the packet's queue
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
        if (Bpf.Syscall < 0 || queues < 2) return -1;
        int map;
        lock (RawDecisionMapLock)
        {
            if (_rawDecisionMap < 0) _rawDecisionMap = Bpf.CreatePerCpuMap(32); // { start_ns, count, key, target }
            map = _rawDecisionMap;
        }
        if (map < 0) return -1;
        var insns = new List<long>(64);
        SteeringRule.EmitCpuAndSlot(insns, map, out int toBulk, out int toLocal1); // r6 = skb (LD_ABS/LD_IND read through it), r7 = cpu, r8 = &slot
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
        int toSpill = SteeringRule.EmitFloodWindow(insns);                  // counts the packet; falls through: stay
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
        return Bpf.LoadSocketFilter(CollectionsMarshal.AsSpan(insns));
    }
}
