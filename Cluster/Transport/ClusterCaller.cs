using System.Security.Cryptography.X509Certificates;
using Microsoft.AspNetCore.Http;
using UserOverlay.Cluster.Manager;

namespace UserOverlay.Cluster.Transport;

/// <summary>The authenticated node calling a route of a <see cref="ClusterServer"/>, read from its validated certificate.</summary>
/// <param name="NodeId">Its node id (CN).</param>
/// <param name="Role">Its role: the certificate's, lowered to worker when the cluster says it is a worker now (a demotion
/// takes effect at once; a promotion at the node's next renewal).</param>
/// <param name="ClusterId">Its cluster (O; this server's cluster).</param>
/// <param name="Certificate">The certificate it presented.</param>
public sealed record ClusterCaller(string NodeId, NodeRole Role, string ClusterId, X509Certificate2 Certificate);

/// <summary>Reading the caller in route handlers.</summary>
public static class ClusterCallerExtensions
{
    private static readonly object Key = new();

    /// <summary>
    /// The node calling this route. Only routes added through <see cref="ClusterServerOptions.NodeRoutes"/> or
    /// <see cref="ClusterServerOptions.ManagerRoutes"/> (and renew) have one; elsewhere this throws
    /// <see cref="InvalidOperationException"/>.
    /// </summary>
    public static ClusterCaller GetClusterCaller(this HttpContext context) =>
        TryGetClusterCaller(context) ?? throw new InvalidOperationException(
            "this route is not authenticated: add it through ClusterServerOptions.NodeRoutes or ManagerRoutes to get a caller");

    /// <summary>The node calling this route, or null on an open route.</summary>
    public static ClusterCaller? TryGetClusterCaller(this HttpContext context) =>
        context.Items.TryGetValue(Key, out var c) ? c as ClusterCaller : null;

    internal static void SetClusterCaller(this HttpContext context, ClusterCaller caller) => context.Items[Key] = caller;
}
