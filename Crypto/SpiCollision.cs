namespace UserOverlay.Crypto;

/// <summary>An SPI that more than one inbound SA derived (see README, "SPI collisions").</summary>
public sealed record SpiCollision(uint Spi, IReadOnlyList<string> Sas);
