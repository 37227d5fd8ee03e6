namespace UserOverlay.Cli.Daemon;

/// <summary>The ESP SAs a router holds (<c>GET /v1/sa</c>): secrets, for decrypting captures.</summary>
public sealed record SaResponse(string Warning, IReadOnlyList<UserOverlay.Crypto.EspSaDescription> Sas);
