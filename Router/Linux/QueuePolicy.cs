namespace UserOverlay.Router.Linux;

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
/// socket group's rule, spilling included, gives their queue (<see cref="RawEspSteering.AttachQueueFilter"/>).</item>
/// </list>
/// Why: waking a worker on another CPU is the most expensive step of a userspace hop on a virtual machine (an
/// inter-processor interrupt to a halted vCPU). Measured on the 2-vCPU test VM, one hop's wake-up across vCPUs
/// cost more than all the forwarding work; a worker woken on the CPU that is already running the sender starts
/// as soon as the sender blocks. Each worker also adds a core for throughput.
/// <para>This class holds the rule's numbers and the queue count; <see cref="ReusePortSteering"/>, <see cref="TapSteering"/>
/// and <see cref="RawEspSteering"/> attach it at each edge, <see cref="SteeringRule"/> holds the instructions they share.</para>
/// </summary>
internal static class QueuePolicy
{
    /// <summary>Most queues (workers) a router opens when asked for one per CPU.</summary>
    public const int MaxAutoQueues = 16;

    /// <summary>
    /// Frames and datagrams longer than this are bulk data (full-size segments, TCP super-frames): they go to the
    /// next CPU's queue rather than the sender's, so a single stream is pipelined over two cores instead of queuing
    /// behind its own sender. Small ones (pings, ACKs, requests) stay on the sender's CPU, where latency is lowest.
    /// </summary>
    public const uint BulkBytes = 512;

    /// <summary>
    /// Small datagrams a CPU's socket takes per <see cref="SpillWindowNs"/> before the rest of the window's go to the
    /// next CPU's (16 per ms: 16,000 a second). Below that rate — pings, requests, a TCP stream's ACKs at modest
    /// rates — everything stays on the CPU it arrived on; a flood spills.
    /// </summary>
    public const int SpillThreshold = 16;

    /// <summary>The window <see cref="SpillThreshold"/> counts in: 1 ms.</summary>
    public const long SpillWindowNs = 1_000_000;

    /// <summary>
    /// Queues for a request of <paramref name="requested"/> (0: one per CPU up to the highest CPU this process
    /// may use, at most <see cref="MaxAutoQueues"/>; both steering programs map CPU <c>c</c> to queue <c>c % queues</c>).
    /// </summary>
    public static int QueueCount(int requested)
    {
        if (requested > 0) return requested;
        int[] cpus = CpuAffinity.AllowedCpus();
        return cpus.Length == 0 ? 1 : Math.Clamp(cpus[^1] + 1, 1, MaxAutoQueues);
    }
}
