using UserOverlay.Cluster.Manager;
using UserOverlay.Cluster.Security;

namespace UserOverlay.Samples.Embed;

/// <summary>UserOverlay.Cluster on its own: a cluster's certificate authority, a join token and a node's identity
/// (docs/packages/UserOverlay.Cluster.md shows the part between the example markers).</summary>
internal static class ClusterExample
{
    public static bool Run()
    {
        // <example>
        using var ca = ClusterCa.Create("example-cluster");             // a self-signed P-256 root
        JoinToken token = JoinToken.Create(ca.CertificatePem);           // SWMTKN-1-<root digest>-<secret>
        using NodeIdentity node = ca.IssueIdentity("node-1", NodeRole.Worker);
        bool parsed = JoinToken.TryParse(token.ToString(), out JoinToken? back, out string error);
        Console.WriteLine($"cluster: {ca.ClusterId} issued {node.NodeId} ({node.Role}) until {node.NotAfter:yyyy-MM-dd}; "
            + $"token parses: {parsed}{error}");
        // </example>
        return parsed && back!.Digest == JoinToken.DigestOf(ca.CertificatePem) && node.ClusterId == ca.ClusterId;
    }
}
