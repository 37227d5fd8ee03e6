namespace UserOverlay.Crypto.Tests;

/// <summary>The per-packet path the router uses (EspPeer.Seal, EspSecurityDatabase.Open) allocates nothing, with the
/// AesGcm and the Intrinsics backends (BouncyCastle allocates in GcmBlockCipher.Init and is not a data-path backend).</summary>
public class AllocationTests
{
    [Theory]
    [InlineData(64, GcmBackend.AesGcm)]
    [InlineData(1400, GcmBackend.AesGcm)]
    [InlineData(64, GcmBackend.Intrinsics)]
    [InlineData(1400, GcmBackend.Intrinsics)]
    [InlineData(9000, GcmBackend.Intrinsics)]
    public void Seal_and_open_allocate_nothing(int frame, GcmBackend backend)
    {
        using var pair = new Pair(new EspOptions { CipherLanes = 1 }, backend: backend);
        byte[] payload = new byte[16 + frame];
        new Random(1).NextBytes(payload);
        byte[] buffer = GC.AllocateUninitializedArray<byte>(64 + payload.Length + Esp.MaxTrailerLength, pinned: true);
        EspPeer peer = pair.AtoB;
        EspSecurityDatabase a = pair.A;
        EspSecurityDatabase b = pair.B;
        int round = 0;

        void RoundTrip()
        {
            payload.CopyTo(buffer.AsSpan(64));
            // Alternate between the handle (what the router keeps) and the lock-free lookup by (key, peer).
            EspSealStatus s = (round++ & 1) == 0
                ? peer.Seal(buffer, 64, payload.Length, Esp.NextHeaderUdp, out int n)
                : a.Seal(Pair.KeyId, Packets.HostB, buffer, 64, payload.Length, Esp.NextHeaderUdp, out n);
            if (s != EspSealStatus.Ok)
                throw new InvalidOperationException("seal");
            if (b.Open(buffer.AsSpan(64 - Esp.HeaderLength, n), out _, out _, out _, out _) != EspOpenStatus.Ok)
                throw new InvalidOperationException("open");
        }

        for (int i = 0; i < 64; i++)
            RoundTrip(); // warm up (JIT tiers, lazily initialised statics)
        long before = GC.GetAllocatedBytesForCurrentThread();
        for (int i = 0; i < 1000; i++)
            RoundTrip();
        long delta = GC.GetAllocatedBytesForCurrentThread() - before;
        Assert.Equal(0, delta);
    }
}
