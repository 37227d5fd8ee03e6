using System.Net;
using UserOverlay.Router;

namespace UserOverlay.Cli.Config;

/// <summary>A host's configuration file, loaded and validated: the router's options plus daemon settings.</summary>
public sealed record HostConfig
{
    /// <summary>The file it came from (absolute path).</summary>
    public required string File { get; init; }
    /// <summary>The router's options.</summary>
    public required RouterOptions Router { get; init; }
    /// <summary>Where to serve Prometheus metrics (host and port), or null.</summary>
    public IPEndPoint? Metrics { get; init; }
    /// <summary>Gossip mode (the <c>gossip:</c> section), or null for static mode.</summary>
    public GossipConfig? Gossip { get; init; }
    /// <summary>The DNS responder at the gateways (the <c>dns:</c> section).</summary>
    public DnsConfig Dns { get; init; } = new();
    /// <summary>Where ESP sequence reservations persist (<c>encryption.state_dir</c>; default /var/lib/useroverlay), one subdirectory per router name.</summary>
    public string EspStateDirectory { get; init; } = EncryptionSection.DefaultStateDirectory;
}
