namespace UserOverlay.Router.Linux;

/// <summary>
/// eBPF instruction encoding: each instruction is one 64-bit word (opcode, destination and source registers, a signed
/// 16-bit offset, a 32-bit immediate), as <c>struct bpf_insn</c> lays it out on a little-endian host. Jumps are
/// emitted as placeholders (0) and filled in once their targets are known.
/// </summary>
internal static class BpfAssembler
{
    /// <summary>One eBPF instruction: opcode, registers, offset, immediate.</summary>
    public static long I(int code, int dst = 0, int src = 0, int off = 0, int imm = 0) =>
        (long)(byte)code | ((long)(dst & 0xf) << 8) | ((long)(src & 0xf) << 12) | ((long)(ushort)(short)off << 16) | ((long)(uint)imm << 32);
}
