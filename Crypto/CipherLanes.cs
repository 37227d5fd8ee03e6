namespace UserOverlay.Crypto;

/// <summary>
/// A small set of <see cref="GcmEngine"/>s for one SA so that several pipeline threads can seal or open with the
/// same SA at once: a thread takes a free lane with one compare-and-swap (its start lane is its managed thread id
/// modulo the lane count, so each pipeline thread usually finds "its" lane free) and gives it back after the call.
/// Every lane's key schedule is built with the SA, on the control path: the data path never constructs a cipher.
/// AesGcm and BouncyCastle keep per-message state in their objects, so a lane is really needed per concurrent caller;
/// <see cref="AesGcmIntrinsics"/> keeps its per-message state in registers and on the stack, so for it a lane is only
/// a permit that keeps <see cref="Dispose"/> from zeroing key material under a call in progress (one CAS and one store
/// per packet, ≈ 8 ns measured).
/// </summary>
/// <remarks>
/// Thread-safe. <see cref="Dispose"/> waits for every lane to be returned, then frees the key schedules; a
/// <see cref="Rent"/> after Dispose returns null, so a sealer racing with rotation fails closed, never crashes.
/// </remarks>
internal sealed class CipherLanes : IDisposable
{
    private const int Stride = 16; // one busy flag per 64-byte cache line

    private readonly GcmEngine?[] _engines;
    private readonly int[] _busy;
    private volatile bool _disposed;

    public CipherLanes(GcmBackend backend, ReadOnlySpan<byte> key, int lanes)
    {
        if (lanes < 1)
            lanes = 1;
        _engines = new GcmEngine?[lanes];
        _busy = new int[lanes * Stride];
        for (int l = 0; l < lanes; l++)
            _engines[l] = GcmEngine.Create(backend, key);
    }

    public int Count => _engines.Length;

    /// <summary>Takes a lane; null only after <see cref="Dispose"/>. Pair with <see cref="Return"/>.</summary>
    public GcmEngine? Rent(out int lane)
    {
        int n = _engines.Length;
        int start = Environment.CurrentManagedThreadId % n;
        var spin = new SpinWait();
        while (true)
        {
            for (int i = 0; i < n; i++)
            {
                int l = start + i;
                if (l >= n)
                    l -= n;
                if (Interlocked.CompareExchange(ref _busy[l * Stride], 1, 0) == 0)
                {
                    if (_disposed)
                    {
                        Volatile.Write(ref _busy[l * Stride], 0);
                        lane = -1;
                        return null;
                    }
                    lane = l;
                    return _engines[l];
                }
            }
            if (_disposed)
            {
                lane = -1;
                return null;
            }
            spin.SpinOnce();
        }
    }

    public void Return(int lane) => Volatile.Write(ref _busy[lane * Stride], 0);

    public void Dispose()
    {
        if (_disposed)
            return;
        _disposed = true;
        var spin = new SpinWait();
        for (int l = 0; l < _engines.Length; l++)
        {
            // Take every lane for good; a thread inside Seal/Open finishes first.
            while (Interlocked.CompareExchange(ref _busy[l * Stride], 1, 0) != 0)
                spin.SpinOnce();
            _engines[l]?.Dispose();
            _engines[l] = null;
        }
    }
}
