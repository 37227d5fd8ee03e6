using System.Buffers.Binary;
using System.Runtime.CompilerServices;

namespace UserOverlay.Crypto;

/// <summary>
/// The sending half of one SA: seals payloads in place into ESP packets.
/// </summary>
/// <remarks>
/// <para>Thread contract: <see cref="Seal"/> may be called by any number of threads at once. Sequence numbers come
/// from one <see cref="Interlocked.Increment(ref long)"/>, so each packet gets its own; the AES-GCM work runs on one
/// of <see cref="EspSaParameters.CipherLanes"/> key schedules, all built with the SA (a busy lane costs a spin,
/// never an allocation or a cipher construction).
/// Packets sealed concurrently may leave in a different order than their sequence numbers; the receiver's
/// 4032-packet window absorbs that.</para>
/// <para>Nonce uniqueness: the IV is the 64-bit sequence number, big-endian (RFC 4106 §3.1 allows a counter), so a
/// nonce repeats only if a sequence number does. Numbers are never reused within the object; across restarts the
/// <see cref="ISequenceStore"/> reservation (used by <see cref="EspSecurityDatabase"/>) makes the next run start
/// above everything the previous run may have used.</para>
/// </remarks>
public sealed class OutboundSa : SecurityAssociation
{
    private readonly ulong _hardLimit;
    private readonly ulong _rekeyAfter;
    private readonly Reservation? _reservation;
    private long _last;            // last sequence number handed out
    private long _reservedThrough; // highest number that may be used (durably reserved when a store is attached)

    /// <summary>
    /// Creates an SA that is not persisted: the caller guarantees (key, SPI) was never used with a sequence number
    /// above <paramref name="lastSequence"/> (tests, benchmarks, a fresh random key). Routers use <see cref="EspSecurityDatabase"/>.
    /// </summary>
    public OutboundSa(EspSaParameters parameters, ulong lastSequence = 0, ulong? rekeyAfterPackets = null)
        : this(parameters, lastSequence, rekeyAfterPackets, null)
    {
    }

    internal OutboundSa(EspSaParameters parameters, ulong lastSequence, ulong? rekeyAfterPackets, Reservation? reservation)
        : base(parameters)
    {
        _hardLimit = parameters.ExtendedSequenceNumbers ? long.MaxValue : Esp.MaxSequence32;
        _rekeyAfter = rekeyAfterPackets ?? (parameters.ExtendedSequenceNumbers ? Esp.DefaultRekeyAfterPackets64 : Esp.DefaultRekeyAfterPackets32);
        _last = (long)Math.Min(lastSequence, _hardLimit);
        _reservation = reservation;
        _reservedThrough = reservation is null ? (long)_hardLimit : (long)_last;
        reservation?.Attach(this);
    }

    /// <inheritdoc/>
    public override EspDirection Direction => EspDirection.Outbound;

    /// <summary>Last sequence number handed out (the number of packets sealed, plus any start offset).</summary>
    public ulong LastSequence => (ulong)Volatile.Read(ref _last);

    /// <summary>Highest sequence number that may be used before the next reservation.</summary>
    public ulong ReservedThrough => (ulong)Volatile.Read(ref _reservedThrough);

    /// <summary>True once the SA has used the sequence numbers that call for the next epoch (<see cref="EspOptions.RekeyAfterPackets"/>).</summary>
    public bool NeedsRekey => LastSequence >= _rekeyAfter;

    /// <summary>True when no further packet can be sealed (2^32 − 1 used without ESN).</summary>
    public bool IsExhausted => LastSequence >= _hardLimit;

    /// <summary>
    /// Seals in place. Input: the payload (for the router, the UDP datagram: UDP header, VXLAN header, inner
    /// Ethernet frame) at <c>buffer[payloadOffset .. payloadOffset + payloadLength)</c>, with at least
    /// <see cref="Esp.HeaderLength"/> (16) bytes of headroom before it and room for the payload plus
    /// <see cref="Esp.MaxTrailerLength"/> (21) bytes after <paramref name="payloadOffset"/>.
    /// Output: the ESP packet at <c>buffer[payloadOffset − 16 .. payloadOffset − 16 + espLength)</c>:
    /// SPI, sequence number, IV, ciphertext of (payload ‖ padding ‖ pad length ‖ next header), ICV.
    /// Send it as the payload of an IP packet with protocol 50, or after a UDP header for ESP-in-UDP.
    /// </summary>
    /// <returns><see cref="EspSealStatus.Ok"/>, or why nothing may be sent (then <paramref name="espLength"/> is 0 and the
    /// payload bytes are unchanged).</returns>
    /// <exception cref="ArgumentException">too little headroom or tailroom (a programming error, not a packet condition).</exception>
    public EspSealStatus Seal(Span<byte> buffer, int payloadOffset, int payloadLength, byte nextHeader, out int espLength)
    {
        if (payloadOffset < Esp.HeaderLength)
            ThrowHelper.Headroom(payloadOffset);
        if (payloadLength < 0)
            ThrowHelper.PayloadLength(payloadLength);
        int need = payloadLength + Esp.PadLength(payloadLength) + Esp.TrailerLength + Esp.IcvLength;
        if (buffer.Length - payloadOffset < need)
            ThrowHelper.Tailroom(need, buffer.Length - payloadOffset);

        ulong seq = (ulong)Interlocked.Increment(ref _last);
        ulong reserved = (ulong)Volatile.Read(ref _reservedThrough);
        if (seq > reserved)
        {
            espLength = 0;
            if (seq > _hardLimit)
                return EspSealStatus.SequenceExhausted;
            _reservation?.Request();
            return EspSealStatus.AwaitingReservation;
        }
        if (_reservation is not null && reserved < _hardLimit && reserved - seq < _reservation.LowWater)
            _reservation.Request();

        GcmEngine? engine = _lanes.Rent(out int lane);
        if (engine is null)
        {
            espLength = 0;
            return EspSealStatus.NoSa;
        }
        try
        {
            Span<byte> iv = stackalloc byte[Esp.IvLength];
            BinaryPrimitives.WriteUInt64BigEndian(iv, seq);
            espLength = EspCodec.Seal(engine, _salt, Spi, seq, ExtendedSequenceNumbers, iv, buffer, payloadOffset, payloadLength, nextHeader);
        }
        finally
        {
            _lanes.Return(lane);
        }
        return EspSealStatus.Ok;
    }

    /// <summary>Seals with a given sequence number and IV, bypassing the counter: for published test vectors only.</summary>
    internal int SealExplicit(Span<byte> buffer, int payloadOffset, int payloadLength, byte nextHeader, ulong sequence, ReadOnlySpan<byte> iv)
    {
        GcmEngine engine = _lanes.Rent(out int lane) ?? throw new ObjectDisposedException(nameof(OutboundSa));
        try
        {
            return EspCodec.Seal(engine, _salt, Spi, sequence, ExtendedSequenceNumbers, iv, buffer, payloadOffset, payloadLength, nextHeader);
        }
        finally
        {
            _lanes.Return(lane);
        }
    }

    /// <summary>Reserves the next block synchronously (control path: SA creation). False if the store failed.</summary>
    internal bool ReserveNow() => _reservation is null || _reservation.Run();

    internal Reservation? Reserver => _reservation;

    internal void SetReservedThrough(ulong through) => Volatile.Write(ref _reservedThrough, (long)Math.Min(through, _hardLimit));

    internal ulong HardLimit => _hardLimit;

    /// <summary>
    /// Durable reservation of sequence-number blocks for one SA. The data path only flips a flag and queues this
    /// object (it is its own thread-pool work item, so queuing allocates nothing); the store's fsync runs on the
    /// thread pool. A block is requested when fewer than half a block remain.
    /// </summary>
    internal sealed class Reservation(ISequenceStore store, string recordId, long epoch, ulong block, EspCounters counters) : IThreadPoolWorkItem
    {
        private OutboundSa? _sa;
        private int _queued;
        private readonly Lock _gate = new();

        public ulong LowWater { get; } = block / 2;

        public void Attach(OutboundSa sa) => _sa = sa;

        [MethodImpl(MethodImplOptions.NoInlining)]
        public void Request()
        {
            if (Interlocked.CompareExchange(ref _queued, 1, 0) == 0)
                ThreadPool.UnsafeQueueUserWorkItem(this, preferLocal: false);
        }

        void IThreadPoolWorkItem.Execute()
        {
            Run();
            Volatile.Write(ref _queued, 0);
        }

        /// <summary>The first block, to be made durable by the caller (batched) before the SA is published.</summary>
        public SequenceReservation FirstBlock()
        {
            OutboundSa sa = _sa!;
            ulong last = sa.LastSequence;
            ulong through = last > sa._hardLimit - block ? sa._hardLimit : last + block;
            return new SequenceReservation(recordId, epoch, through);
        }

        /// <summary>Called after <see cref="FirstBlock"/> was made durable.</summary>
        public void Completed(ulong through) => _sa!.SetReservedThrough(through);

        public bool Run()
        {
            OutboundSa sa = _sa!;
            lock (_gate)
            {
                ulong current = sa.ReservedThrough;
                ulong last = sa.LastSequence;
                if (current >= sa._hardLimit || (current > last && current - last >= LowWater))
                    return true;
                ulong basis = Math.Max(current, Math.Min(last, sa._hardLimit));
                ulong through = basis > sa._hardLimit - block ? sa._hardLimit : basis + block;
                try
                {
                    store.Reserve(recordId, epoch, through);
                }
                catch (Exception e) when (e is IOException or UnauthorizedAccessException)
                {
                    counters.ReservationFailed(e);
                    return false;
                }
                sa.SetReservedThrough(through);
                return true;
            }
        }
    }
}
