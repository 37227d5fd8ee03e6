namespace UserOverlay.Router;

/// <summary>
/// Creates the router's I/O edges. <c>LinuxPlatform</c> makes real TAP devices and UDP sockets;
/// <see cref="Testing.InMemoryPlatform"/> makes test doubles.
/// </summary>
public interface IRouterPlatform
{
    /// <summary>Creates and configures one endpoint's TAP device (inside its namespace).</summary>
    ITapDevice CreateTap(TapRequest request);

    /// <summary>Opens the data-path socket bound to <paramref name="local"/>.</summary>
    IUnderlay OpenUnderlay(VtepEndpoint local, int batchSize);

    /// <summary>
    /// Opens the ESP socket on <paramref name="local"/>'s address: IP protocol 50 when <paramref name="udpPort"/> is 0
    /// (transport mode), else UDP on that port (ESP-in-UDP). Received datagrams start at the SPI.
    /// </summary>
    IUnderlay OpenEspUnderlay(VtepEndpoint local, int udpPort, int batchSize);

    /// <summary>
    /// How many queues (pipeline workers) to run for a request of <paramref name="requested"/> (0: the platform's
    /// choice). A platform that answers more than 1 must implement the queue-aware overloads below.
    /// </summary>
    int QueueCount(int requested) => 1;

    /// <summary>Opens queue <paramref name="queue"/> of <paramref name="queues"/> data-path sockets on <paramref name="local"/>.</summary>
    IUnderlay OpenUnderlay(VtepEndpoint local, int batchSize, int queue, int queues) =>
        queues == 1 ? OpenUnderlay(local, batchSize) : throw new NotSupportedException("this platform has one queue");

    /// <summary>Opens queue <paramref name="queue"/> of <paramref name="queues"/> ESP sockets (see <see cref="OpenEspUnderlay(VtepEndpoint, int, int)"/>).</summary>
    IUnderlay OpenEspUnderlay(VtepEndpoint local, int udpPort, int batchSize, int queue, int queues) =>
        queues == 1 ? OpenEspUnderlay(local, udpPort, batchSize) : throw new NotSupportedException("this platform has one queue");
}
