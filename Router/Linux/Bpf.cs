using System.Runtime.InteropServices;

namespace UserOverlay.Router.Linux;

/// <summary>
/// The bpf(2) system call: loading socket-filter programs and creating per-CPU array maps. Every fd returned is the
/// caller's to close (an attached program or a program using a map holds its own reference).
/// </summary>
internal static unsafe class Bpf
{
    /// <summary>bpf(2)'s number on this architecture, or -1 where the router does not know it (no eBPF then).</summary>
    public static nint Syscall => RuntimeInformation.ProcessArchitecture switch
    {
        Architecture.X64 => 321,
        Architecture.Arm64 => 280,
        _ => -1,
    };

    /// <summary>Loads <paramref name="insns"/> as a BPF_PROG_TYPE_SOCKET_FILTER program: its fd, or -1 with errno set.</summary>
    public static int LoadSocketFilter(ReadOnlySpan<long> insns)
    {
        long* code = stackalloc long[insns.Length];
        for (int i = 0; i < insns.Length; i++) code[i] = insns[i];
        byte* license = stackalloc byte[4] { (byte)'G', (byte)'P', (byte)'L', 0 };
        byte* attr = stackalloc byte[128]; // union bpf_attr for BPF_PROG_LOAD; the rest must be zero
        new Span<byte>(attr, 128).Clear();
        *(uint*)attr = 1;                  // prog_type = BPF_PROG_TYPE_SOCKET_FILTER
        *(uint*)(attr + 4) = (uint)insns.Length;
        *(ulong*)(attr + 8) = (ulong)code;
        *(ulong*)(attr + 16) = (ulong)license;
        if (Syscall < 0) return -1;
        return (int)Interop.Libc.syscall(Syscall, 5 /* BPF_PROG_LOAD */, (nint)attr, 128);
    }

    /// <summary>A per-CPU array of one <paramref name="valueSize"/>-byte slot: its fd, or -1 with errno set.</summary>
    public static int CreatePerCpuMap(int valueSize)
    {
        byte* attr = stackalloc byte[128];
        new Span<byte>(attr, 128).Clear();
        *(uint*)attr = 6;                  // map_type = BPF_MAP_TYPE_PERCPU_ARRAY
        *(uint*)(attr + 4) = 4;            // key_size
        *(uint*)(attr + 8) = (uint)valueSize;
        *(uint*)(attr + 12) = 1;           // max_entries
        if (Syscall < 0) return -1;
        return (int)Interop.Libc.syscall(Syscall, 0 /* BPF_MAP_CREATE */, (nint)attr, 128);
    }
}
