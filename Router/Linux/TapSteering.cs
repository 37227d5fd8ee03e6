using static UserOverlay.Router.Linux.BpfAssembler;
using static UserOverlay.Router.Linux.QueuePolicy;

namespace UserOverlay.Router.Linux;

/// <summary>Steers a multi-queue TAP's frames to the queue of the CPU that sent them (TUNSETSTEERINGEBPF).</summary>
internal static unsafe class TapSteering
{
    private const nuint TUNSETSTEERINGEBPF = 0x800454e0; // _IOR('T', 224, int)

    /// <summary>
    /// Gives the multi-queue TAP behind <paramref name="tapFd"/> a steering program that returns the current CPU
    /// (<c>call bpf_get_smp_processor_id; exit</c>), so a frame the endpoint sends lands in that CPU's queue.
    /// Returns false with errno set when the kernel refuses (no eBPF: the tun driver then spreads flows by hash,
    /// which is still correct, only not CPU-local).
    /// </summary>
    public static bool AttachCpuProgram(int tapFd)
    {
        Span<long> insns = stackalloc long[6];
        insns[0] = I(0xbf, dst: 6, src: 1);                    // r6 = r1 (the __sk_buff)
        insns[1] = I(0x85, imm: 8);                            // call bpf_get_smp_processor_id
        insns[2] = I(0x61, dst: 2, src: 6);                    // r2 = *(u32 *)(r6 + 0): __sk_buff.len
        insns[3] = I(0xb5, dst: 2, off: 1, imm: (int)BulkBytes); // if r2 <= BulkBytes goto +1
        insns[4] = I(0x07, imm: 1);                            // r0 += 1
        insns[5] = I(0x95);                                    // exit
        int prog = Bpf.LoadSocketFilter(insns);
        if (prog < 0) return false;
        try { return Interop.Libc.ioctl(tapFd, TUNSETSTEERINGEBPF, &prog) == 0; }
        finally { Interop.Libc.close(prog); } // the device holds its own reference
    }
}
