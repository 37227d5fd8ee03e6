namespace UserOverlay.Crypto;

/// <summary>
/// Drop and event counters of one <see cref="EspSecurityDatabase"/>. Incremented with Interlocked on the drop
/// paths only (successful packets are not counted here, so the hot path touches no shared counter).
/// Thread-safe; values are monotonic except <see cref="CurrentSpiCollisions"/>.
/// </summary>
public sealed class EspCounters
{
    private readonly long[] _open = new long[Enum.GetValues<EspOpenStatus>().Length];
    private readonly long[] _seal = new long[Enum.GetValues<EspSealStatus>().Length];
    private long _spiCollisionsDetected;
    private long _rotations;
    private long _reservationFailures;
    private volatile string? _lastError;

    /// <summary>Inbound packets dropped for <paramref name="reason"/> (0 for <see cref="EspOpenStatus.Ok"/>).</summary>
    public long Dropped(EspOpenStatus reason) => Volatile.Read(ref _open[(int)reason]);

    /// <summary>Outbound packets not sent for <paramref name="reason"/> (0 for <see cref="EspSealStatus.Ok"/>).</summary>
    public long NotSent(EspSealStatus reason) => Volatile.Read(ref _seal[(int)reason]);

    /// <summary>Times a new SPI collision among inbound SAs was found (each is still served: see README, "SPI collisions").</summary>
    public long SpiCollisionsDetected => Volatile.Read(ref _spiCollisionsDetected);

    /// <summary>SPIs shared by more than one inbound SA right now.</summary>
    public int CurrentSpiCollisions { get; internal set; }

    /// <summary>Outbound SAs replaced by a newer epoch (scheduled or early).</summary>
    public long Rotations => Volatile.Read(ref _rotations);

    /// <summary>Sequence reservations the store could not make durable (sealing then stops: fail closed).</summary>
    public long ReservationFailures => Volatile.Read(ref _reservationFailures);

    /// <summary>Message of the last store failure, if any.</summary>
    public string? LastError => _lastError;

    internal void Count(EspOpenStatus reason) => Interlocked.Increment(ref _open[(int)reason]);

    internal void Count(EspSealStatus reason) => Interlocked.Increment(ref _seal[(int)reason]);

    internal void SpiCollision() => Interlocked.Increment(ref _spiCollisionsDetected);

    internal void Rotated() => Interlocked.Increment(ref _rotations);

    internal void ReservationFailed(Exception e)
    {
        Interlocked.Increment(ref _reservationFailures);
        _lastError = e.Message;
    }
}
