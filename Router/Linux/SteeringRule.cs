using static UserOverlay.Router.Linux.BpfAssembler;
using static UserOverlay.Router.Linux.QueuePolicy;

namespace UserOverlay.Router.Linux;

/// <summary>
/// The instructions the queue-steering programs share (<see cref="ReusePortSteering"/>, <see cref="RawEspSteering"/>):
/// the rule of <see cref="QueuePolicy"/> in classic BPF, and in eBPF the opening that finds this CPU's slot of a per-CPU
/// map and the flood window's count. Writing them once keeps the socket group and the raw sockets deciding alike.
/// </summary>
internal static unsafe class SteeringRule
{
    /// <summary>
    /// Writes the steering rule in classic BPF at <paramref name="code"/> — A = <c>cpu % queues</c> for a small packet,
    /// <c>(cpu + 1) % queues</c> for bulk (over <see cref="QueuePolicy.BulkBytes"/>; <c>len</c> is the UDP payload for a socket group,
    /// the IP packet for a raw socket) — and returns the number of instructions written (7).
    /// </summary>
    public static int WriteClassic(Interop.SockFilter* code, int queues)
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
    /// Both socket filters' opening: r6 = the __sk_buff, r7 = this CPU, r2 = the packet's length, then this CPU's slot
    /// of the per-CPU array <paramref name="map"/> in r8. Leaves two jumps for the caller to fill in:
    /// <paramref name="toBulk"/> (taken when r2 &gt; BulkBytes, before the lookup) and <paramref name="toNoSlot"/> (r0 == 0).
    /// </summary>
    public static void EmitCpuAndSlot(List<long> insns, int map, out int toBulk, out int toNoSlot)
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
    /// <see cref="QueuePolicy.SpillWindowNs"/> starts again at 1. Returns the index of the jump the caller fills in, taken with the
    /// count in r1 when it is past the threshold (spill); otherwise the code falls through past what this emitted (stay).
    /// </summary>
    public static int EmitFloodWindow(List<long> insns)
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
}
