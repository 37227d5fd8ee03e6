namespace UserOverlay.Router.Linux;

/// <summary>
/// The CPUs this process may run on, and pinning a thread to one (sched_getaffinity, sched_setaffinity). A mask covers
/// 1,024 CPUs. Thread-safe (each call is one system call on the calling thread).
/// </summary>
internal static unsafe class CpuAffinity
{
    private const int Words = 16; // 64-bit words of a CPU mask: 1,024 CPUs

    /// <summary>The CPUs this process may run on (sched_getaffinity), ascending; empty when unknown.</summary>
    public static int[] AllowedCpus()
    {
        ulong* mask = stackalloc ulong[Words];
        if (Interop.Libc.sched_getaffinity(0, (nuint)(Words * sizeof(ulong)), mask) != 0) return [];
        var cpus = new List<int>();
        for (int w = 0; w < Words; w++)
            for (int b = 0; b < 64; b++)
                if ((mask[w] & (1UL << b)) != 0) cpus.Add(w * 64 + b);
        return [.. cpus];
    }

    /// <summary>Pins the calling thread to <paramref name="cpu"/>; false (and nothing changed) when the process may not use it.</summary>
    public static bool PinCurrentThread(int cpu)
    {
        if (cpu < 0 || cpu >= Words * 64) return false;
        ulong* mask = stackalloc ulong[Words];
        new Span<ulong>(mask, Words).Clear();
        mask[cpu / 64] = 1UL << (cpu % 64);
        return Interop.Libc.sched_setaffinity(0, (nuint)(Words * sizeof(ulong)), mask) == 0;
    }
}
