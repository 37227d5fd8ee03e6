using System.Buffers.Binary;

namespace UserOverlay.Crypto;

/// <summary>
/// The receiving half of one SA: authenticates, checks anti-replay, decrypts in place and strips the trailer.
/// </summary>
/// <remarks>
/// Thread contract: <see cref="Open"/> may be called by any number of threads at once. The replay window is a
/// <see cref="ReplayWindow"/> under a private lock held only for the check before decryption and the update after
/// it (never during AES work); decryption runs on a cipher lane. Per RFC 4303 §3.4.3 the window moves only after
/// the ICV verified, so a forged packet cannot advance it.
/// </remarks>
public sealed class InboundSa : SecurityAssociation
{
    private readonly Lock _windowLock = new();
    private ReplayWindow _window;
    private long _accepted;

    /// <summary>Creates an inbound SA.</summary>
    public InboundSa(EspSaParameters parameters) : base(parameters)
    {
    }

    /// <inheritdoc/>
    public override EspDirection Direction => EspDirection.Inbound;

    /// <summary>Packets accepted so far.</summary>
    public long Accepted => Volatile.Read(ref _accepted);

    /// <summary>Highest sequence number accepted (0 before the first).</summary>
    public ulong HighestSequence
    {
        get
        {
            lock (_windowLock)
                return _window.Top;
        }
    }

    /// <summary>Rejects every sequence number up to <paramref name="floor"/> (restored replay state after a restart).</summary>
    internal void RaiseFloor(ulong floor)
    {
        lock (_windowLock)
            _window.RaiseFloor(floor);
    }

    /// <summary>Highest sequence number last made durable by the database (control path only).</summary>
    internal ulong PersistedTop { get; set; }

    /// <summary>Test hook: marks <paramref name="sequence"/> as received, so the window sits just below a test vector's number.</summary>
    internal void AcceptForTest(ulong sequence)
    {
        lock (_windowLock)
            _window.TryAccept(sequence);
    }

    /// <summary>
    /// Opens the ESP packet that fills <paramref name="espPacket"/> exactly (from the SPI to the end of the ICV).
    /// On <see cref="EspOpenStatus.Ok"/> the plaintext payload is at
    /// <c>espPacket[payloadOffset .. payloadOffset + payloadLength)</c> (payloadOffset is always
    /// <see cref="Esp.HeaderLength"/>), and <paramref name="nextHeader"/> says what it is (17 = UDP for VXLAN;
    /// 59 = dummy packet, discard). On any other status the packet must be dropped; after
    /// <see cref="EspOpenStatus.AuthenticationFailed"/> its bytes are destroyed.
    /// The SPI is not compared (the caller looked the SA up by it).
    /// </summary>
    public EspOpenStatus Open(Span<byte> espPacket, out int payloadOffset, out int payloadLength, out byte nextHeader)
    {
        payloadOffset = 0;
        payloadLength = 0;
        nextHeader = 0;
        if (espPacket.Length < Esp.MinPacketLength)
            return EspOpenStatus.Truncated;
        int encrypted = espPacket.Length - Esp.HeaderLength - Esp.IcvLength;
        if ((encrypted & 3) != 0)
            return EspOpenStatus.Malformed;

        uint low = BinaryPrimitives.ReadUInt32BigEndian(espPacket[4..]);
        ulong seq;
        lock (_windowLock)
        {
            if (ExtendedSequenceNumbers)
            {
                if (!ReplayWindow.TryInferExtended(_window.Top, low, out seq))
                    return EspOpenStatus.TooOld;
            }
            else
            {
                seq = low;
            }
            ReplayCheck check = _window.Check(seq);
            if (check != ReplayCheck.Fresh)
                return check == ReplayCheck.Replayed ? EspOpenStatus.Replayed : EspOpenStatus.TooOld;
        }

        GcmEngine? engine = _lanes.Rent(out int lane);
        if (engine is null)
            return EspOpenStatus.UnknownSpi; // disposed: the SA is gone
        bool authentic;
        try
        {
            authentic = EspCodec.Decrypt(engine, _salt, seq, ExtendedSequenceNumbers, espPacket);
        }
        finally
        {
            _lanes.Return(lane);
        }
        if (!authentic)
            return EspOpenStatus.AuthenticationFailed;

        lock (_windowLock)
        {
            // Re-check: another thread may have accepted the same number while we decrypted.
            if (!_window.TryAccept(seq))
                return EspOpenStatus.Replayed;
            _accepted++;
        }

        Span<byte> data = espPacket.Slice(Esp.HeaderLength, encrypted);
        int pad = data[encrypted - 2];
        if (pad + Esp.TrailerLength > encrypted)
            return EspOpenStatus.BadPadding;
        int length = encrypted - Esp.TrailerLength - pad;
        for (int i = 0; i < pad; i++)
        {
            if (data[length + i] != (byte)(i + 1))
                return EspOpenStatus.BadPadding;
        }
        payloadOffset = Esp.HeaderLength;
        payloadLength = length;
        nextHeader = data[encrypted - 1];
        return EspOpenStatus.Ok;
    }
}
