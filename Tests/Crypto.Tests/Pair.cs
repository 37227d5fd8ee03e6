namespace UserOverlay.Crypto.Tests;

/// <summary>A two-host setup: databases for A and B that share one network key.</summary>
internal sealed class Pair : IDisposable
{
    public static readonly DateTimeOffset T0 = new(2026, 1, 1, 0, 0, 0, TimeSpan.Zero);
    public const string KeyId = "net1";

    public StaticNetworkKeySource Keys { get; }
    public EspSecurityDatabase A { get; }
    public EspSecurityDatabase B { get; }
    public EspPeer AtoB { get; }
    public EspPeer BtoA { get; }
    public InMemorySequenceStore StoreA { get; } = new();
    public InMemorySequenceStore StoreB { get; } = new();

    public Pair(EspOptions? options = null, byte[]? key = null, DateTimeOffset? now = null, GcmBackend? backend = null)
    {
        key ??= Enumerable.Range(0, 32).Select(i => (byte)(i * 7 + 1)).ToArray();
        Keys = new StaticNetworkKeySource([new NetworkKey(KeyId, key)]);
        var o = options ?? new EspOptions();
        if (backend is { } b)
            o = o with { Backend = b };
        A = new EspSecurityDatabase(Packets.HostA, Keys, o with { SequenceStore = StoreA }, now ?? T0);
        B = new EspSecurityDatabase(Packets.HostB, Keys, o with { SequenceStore = StoreB }, now ?? T0);
        AtoB = A.AddPeer(KeyId, Packets.HostB);
        BtoA = B.AddPeer(KeyId, Packets.HostA);
    }

    public void Dispose()
    {
        A.Dispose();
        B.Dispose();
    }
}
