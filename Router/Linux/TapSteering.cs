using static UserOverlay.Router.Linux.BpfAssembler;
using static UserOverlay.Router.Linux.QueuePolicy;

namespace UserOverlay.Router.Linux;

/// <summary>
/// Steers a multi-queue TAP's frames to the queue of the CPU that sent them (TUNSETSTEERINGEBPF). One program serves
/// every TAP of the process: it is loaded on first use and kept for the life of the process (each device holds its
/// own reference to it), so thousands of endpoints cost the kernel one program, not one each. Thread-safe.
/// </summary>
internal static unsafe class TapSteering
{
    private const nuint TUNSETSTEERINGEBPF = 0x800454e0; // _IOR('T', 224, int)

    private static readonly Lock Gate = new();
    private static int _program = -1; // the shared program's fd, -1 until loaded
    private static int _loads;

    /// <summary>Programs loaded by this process so far: 1 at most once a TAP has been steered (for tests).</summary>
    internal static int Loads => Volatile.Read(ref _loads);

    /// <summary>
    /// Gives the multi-queue TAP behind <paramref name="tapFd"/> the steering program that returns the current CPU
    /// (<c>call bpf_get_smp_processor_id; exit</c>), so a frame the endpoint sends lands in that CPU's queue.
    /// Returns false with errno set when the kernel refuses (no eBPF: the tun driver then spreads flows by hash,
    /// which is still correct, only not CPU-local).
    /// </summary>
    public static bool AttachCpuProgram(int tapFd)
    {
        int prog = SharedProgram();
        if (prog < 0) return false;
        return Interop.Libc.ioctl(tapFd, TUNSETSTEERINGEBPF, &prog) == 0;
    }

    /// <summary>The shared program's fd (loading it the first time), or -1 with errno set when the kernel refuses it.
    /// The fd is never closed: it is the process's one reference besides the devices', and the process exit releases it.</summary>
    private static int SharedProgram()
    {
        lock (Gate)
        {
            if (_program >= 0) return _program;
            Span<long> insns = stackalloc long[6];
            insns[0] = I(0xbf, dst: 6, src: 1);                    // r6 = r1 (the __sk_buff)
            insns[1] = I(0x85, imm: 8);                            // call bpf_get_smp_processor_id
            insns[2] = I(0x61, dst: 2, src: 6);                    // r2 = *(u32 *)(r6 + 0): __sk_buff.len
            insns[3] = I(0xb5, dst: 2, off: 1, imm: (int)BulkBytes); // if r2 <= BulkBytes goto +1
            insns[4] = I(0x07, imm: 1);                            // r0 += 1
            insns[5] = I(0x95);                                    // exit
            int prog = Bpf.LoadSocketFilter(insns);
            if (prog < 0) return -1; // refused: the next TAP asks again (as before, one load per TAP while refused)
            _loads++;
            _program = prog;
            return prog;
        }
    }
}
