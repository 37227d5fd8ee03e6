namespace UserOverlay.Crypto.Tests;

/// <summary>The per-packet path the router uses (EspPeer.Seal, EspSecurityDatabase.Open, AesGcm backend) allocates nothing.</summary>
public class AllocationTests
{
    [Theory]
    [InlineData(64)]
    [InlineData(1400)]
    public void Seal_and_open_allocate_nothing(int frame)
    {
        using var pair = new Pair(new EspOptions { CipherLanes = 1 });
        byte[] payload = new byte[16 + frame];
        new Random(1).NextBytes(payload);
        byte[] buffer = GC.AllocateUninitializedArray<byte>(64 + payload.Length + Esp.MaxTrailerLength, pinned: true);
        EspPeer peer = pair.AtoB;
        EspSecurityDatabase b = pair.B;

        void RoundTrip()
        {
            payload.CopyTo(buffer.AsSpan(64));
            if (peer.Seal(buffer, 64, payload.Length, Esp.NextHeaderUdp, out int n) != EspSealStatus.Ok)
                throw new InvalidOperationException("seal");
            if (b.Open(buffer.AsSpan(64 - Esp.HeaderLength, n), out _, out _, out _, out _) != EspOpenStatus.Ok)
                throw new InvalidOperationException("open");
        }

        RoundTrip(); // warm up (JIT, lazily built lanes)
        long before = GC.GetAllocatedBytesForCurrentThread();
        for (int i = 0; i < 1000; i++)
            RoundTrip();
        long delta = GC.GetAllocatedBytesForCurrentThread() - before;
        Assert.Equal(0, delta);
    }
}
