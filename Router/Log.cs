using Microsoft.Extensions.Logging;

namespace UserOverlay.Router;

/// <summary>
/// The router's log events (source-generated, stable IDs). Per-packet events never log at
/// Information: drops are counted, not logged. Retired IDs stay listed as "Reserved".
/// </summary>
internal static partial class Log
{
    [LoggerMessage(1, LogLevel.Information, "Router up: VTEP {Underlay}, {Networks} network(s), {Endpoints} endpoint(s), {Peers} peer(s)")]
    public static partial void RouterStarted(ILogger logger, VtepEndpoint underlay, int networks, int endpoints, int peers);

    [LoggerMessage(2, LogLevel.Information, "Endpoint {Interface} in namespace '{Netns}' attached to network '{Network}' (VNI {Vni}) as {Address}, MAC {Mac}")]
    public static partial void EndpointAttached(ILogger logger, string @interface, string netns, string network, uint vni, string address, MacAddress mac);

    [LoggerMessage(3, LogLevel.Information, "Router stopped; removed {Taps} TAP device(s)")]
    public static partial void RouterStopped(ILogger logger, int taps);

    [LoggerMessage(4, LogLevel.Error, "Pipeline worker {Worker} hit an unexpected error; the frame was dropped and forwarding continues")]
    public static partial void WorkerError(ILogger logger, string? worker, Exception exception);

    [LoggerMessage(5, LogLevel.Debug, "Aged out {Removed} learned FDB entr(y/ies)")]
    public static partial void AgedOut(ILogger logger, int removed);

    [LoggerMessage(6, LogLevel.Error, "ESP key rotation failed; encrypted traffic may stop when the current SAs expire")]
    public static partial void EspTickFailed(ILogger logger, Exception exception);

    [LoggerMessage(7, LogLevel.Warning, "TAP reads and writes take one system call per frame: {Reason} (io_uring: false in the configuration silences this)")]
    public static partial void IoUringUnavailable(ILogger logger, string reason);

    [LoggerMessage(8, LogLevel.Information, "Endpoint {Interface} in namespace '{Netns}' detached from network '{Network}'")]
    public static partial void EndpointDetached(ILogger logger, string @interface, string netns, string network);

    [LoggerMessage(9, LogLevel.Information, "Network '{Network}' (VNI {Vni}, {Subnet}) added")]
    public static partial void NetworkAdded(ILogger logger, string network, uint vni, string subnet);

    [LoggerMessage(10, LogLevel.Information, "Network '{Network}' (VNI {Vni}) removed")]
    public static partial void NetworkRemoved(ILogger logger, string network, uint vni);

    [LoggerMessage(11, LogLevel.Debug, "Removed learned FDB entry {Mac} on network '{Network}' → VTEP {Vtep}: sent to for {Seconds} s with no answer from the MAC and nothing from the VTEP; its frames flood until it is learned again")]
    public static partial void UnansweredRemoved(ILogger logger, MacAddress mac, string network, VtepEndpoint vtep, double seconds);

    [LoggerMessage(12, LogLevel.Warning, "The TAP of endpoint {Interface} in namespace '{Netns}' (network '{Network}') went away under the router ({Reason}): it is no longer read and forwards nothing; detach the endpoint to release it")]
    public static partial void TapGone(ILogger logger, string @interface, string netns, string network, string reason);
}
