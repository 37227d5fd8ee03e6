using Microsoft.Extensions.Logging;
using UserOverlay.Membership.Table;
using UserOverlay.Router;

namespace UserOverlay.Control.Gossip;

/// <summary>
/// Gossip mode's log events (category UserOverlay.Gossip; source-generated, stable IDs 100–199).
/// Joins and leaves are Debug here (UserOverlay.Membership logs them at Information already); a
/// failure is a Warning with what it means for forwarding; per-endpoint table events are Debug.
/// Retired IDs stay listed as "Reserved".
/// </summary>
internal static partial class GossipLog
{
    [LoggerMessage(100, LogLevel.Information, "Gossip up: node '{Node}' at {Address} (udp+tcp, {Encryption}); {Networks} network(s), {Endpoints} local endpoint(s) published")]
    private static partial void StartedCore(ILogger logger, string node, string address, string encryption, int networks, int endpoints);

    public static void Started(ILogger logger, string node, string address, bool encrypted, int networks, int endpoints) =>
        StartedCore(logger, node, address, encrypted ? "encrypted" : "not encrypted", networks, endpoints);

    [LoggerMessage(101, LogLevel.Information, "No seeds to join (gossip.join is empty): this is the first host; others join it")]
    public static partial void NoSeeds(ILogger logger);

    [LoggerMessage(102, LogLevel.Information, "Joined the cluster: {Answered} of {Seeds} seed(s) answered (attempt {Attempt}, after {Seconds:0.0} s); {Members} live member(s) known")]
    public static partial void Joined(ILogger logger, int answered, int seeds, int attempt, double seconds, int members);

    [LoggerMessage(103, LogLevel.Warning, "No seed answered yet ({Seeds}): {Reason}. Retrying in the background every {MaxSeconds:0} s at most; the router forwards meanwhile, and hosts that join this one are reachable")]
    public static partial void JoinRetrying(ILogger logger, string seeds, string reason, double maxSeconds);

    [LoggerMessage(104, LogLevel.Warning, "Still not joined after {Seconds:0} s: no seed answered ({Seeds}): {Reason}")]
    public static partial void StillNotJoined(ILogger logger, double seconds, string seeds, string reason);

    [LoggerMessage(105, LogLevel.Error, "Unexpected error while joining the seeds; retrying")]
    public static partial void JoinError(ILogger logger, Exception exception);

    [LoggerMessage(106, LogLevel.Debug, "Member '{Name}' ({Address}) joined (incarnation {Incarnation})")]
    public static partial void MemberJoined(ILogger logger, string name, string address, uint incarnation);

    [LoggerMessage(107, LogLevel.Warning, "Member '{Name}' ({Address}) failed: its endpoints are removed and VXLAN from it is no longer accepted")]
    public static partial void MemberFailed(ILogger logger, string name, string address);

    [LoggerMessage(108, LogLevel.Debug, "Member '{Name}' ({Address}) left")]
    public static partial void MemberLeft(ILogger logger, string name, string address);

    [LoggerMessage(109, LogLevel.Debug, "{Kind} remote endpoint {Network}/{Mac} ({Ip}) via {Vtep} (owner '{Owner}')")]
    public static partial void EndpointSet(ILogger logger, EndpointChangeKind kind, string network, MacAddress mac, string ip, VtepEndpoint vtep, string owner);

    [LoggerMessage(110, LogLevel.Debug, "Removed remote endpoint {Network}/{Mac} ({Ip}) of '{Owner}'")]
    public static partial void EndpointRemoved(ILogger logger, string network, MacAddress mac, string ip, string owner);

    [LoggerMessage(111, LogLevel.Debug, "Flood list of {Network}: [{Peers}]")]
    public static partial void FloodList(ILogger logger, string network, string peers);

    [LoggerMessage(112, LogLevel.Warning, "Member '{Node}' publishes VTEP {Vtep}, which this router cannot use (the underlay is IPv4); ignored")]
    public static partial void UnusableVtep(ILogger logger, string node, string vtep);

    [LoggerMessage(113, LogLevel.Information, "Left the cluster as '{Node}'")]
    public static partial void LeftCluster(ILogger logger, string node);

    [LoggerMessage(114, LogLevel.Warning, "Leaving the cluster timed out after {Seconds:0.#} s; others will detect this host's failure instead")]
    public static partial void LeaveTimedOut(ILogger logger, double seconds);

    [LoggerMessage(115, LogLevel.Debug, "Published local endpoint {Network}/{Mac} ({Ip})")]
    public static partial void EndpointPublished(ILogger logger, string network, MacAddress mac, string ip);

    [LoggerMessage(116, LogLevel.Debug, "Withdrew local endpoint {Network}/{Mac}")]
    public static partial void EndpointWithdrawn(ILogger logger, string network, MacAddress mac);

    [LoggerMessage(117, LogLevel.Information, "Serving network '{Network}' (VNI {Vni}) in gossip")]
    public static partial void NetworkJoined(ILogger logger, string network, uint vni);

    [LoggerMessage(118, LogLevel.Information, "No longer serving network '{Network}' (VNI {Vni}) in gossip; its local endpoints were withdrawn")]
    public static partial void NetworkLeft(ILogger logger, string network, uint vni);

    [LoggerMessage(119, LogLevel.Information, "Gossip keys set: primary {Primary}, {Count} key(s) accepted (others: {Others})")]
    public static partial void KeysSet(ILogger logger, string primary, int count, string others);
}
