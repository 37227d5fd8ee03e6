using System.Runtime.CompilerServices;

namespace UserOverlay.Crypto;

/// <summary>
/// ESP anti-replay window (RFC 4303 §3.4.3) over 64-bit sequence numbers: a ring of 64-bit blocks, the
/// highest accepted number and everything up to <see cref="WindowSize"/> below it. The layout follows
/// wireguard-go's replay filter: the ring is one block longer than the window, so sliding forward only
/// clears whole blocks.
/// </summary>
/// <remarks>
/// Contract: the zero value is ready to use (nothing accepted yet). The type is <b>not</b> thread-safe:
/// <see cref="InboundSa"/> guards its window with a lock. Per RFC 4303, callers <see cref="Check"/> before
/// authenticating (cheap early drop) and <see cref="TryAccept"/> only after the ICV verified, so forged
/// packets never move the window.
/// </remarks>
public struct ReplayWindow
{
    /// <summary>Number of 64-bit blocks in the ring (a power of two).</summary>
    public const int RingBlocks = 64;

    private const int BlockBits = 64;
    private const int BlockShift = 6;
    private const int RingMask = RingBlocks - 1;

    /// <summary>Packets below the highest accepted one that are still tracked: (RingBlocks − 1) × 64 = 4032.</summary>
    public const int WindowSize = (RingBlocks - 1) * BlockBits;

    [InlineArray(RingBlocks)]
    private struct Ring
    {
        private ulong _block0;
    }

    private Ring _ring;
    private ulong _top;

    /// <summary>Highest sequence number accepted so far (0 before the first).</summary>
    public readonly ulong Top => _top;

    /// <summary>Classifies <paramref name="sequence"/> without changing the window.</summary>
    public readonly ReplayCheck Check(ulong sequence)
    {
        if (sequence == 0)
            return ReplayCheck.TooOld;
        if (sequence > _top)
            return ReplayCheck.Fresh;
        if (_top - sequence >= WindowSize)
            return ReplayCheck.TooOld;
        ulong block = _ring[(int)((sequence >> BlockShift) & RingMask)];
        return (block & (1UL << (int)(sequence & (BlockBits - 1)))) != 0 ? ReplayCheck.Replayed : ReplayCheck.Fresh;
    }

    /// <summary>Marks <paramref name="sequence"/> as received, sliding the window forward if it is the new highest.
    /// Returns false (and changes nothing) if it was replayed or too old.</summary>
    public bool TryAccept(ulong sequence)
    {
        if (Check(sequence) != ReplayCheck.Fresh)
            return false;
        if (sequence > _top)
        {
            ulong current = _top >> BlockShift;
            ulong next = sequence >> BlockShift;
            ulong clear = next - current;
            if (clear > RingBlocks)
                clear = RingBlocks;
            for (ulong i = 1; i <= clear; i++)
                _ring[(int)((current + i) & RingMask)] = 0;
            _top = sequence;
        }
        _ring[(int)((sequence >> BlockShift) & RingMask)] |= 1UL << (int)(sequence & (BlockBits - 1));
        return true;
    }

    /// <summary>
    /// Rejects every sequence number up to <paramref name="floor"/> from now on, as if all had been received: used
    /// after a restart, with the highest number the previous run persisted. Only raises, never lowers.
    /// </summary>
    public void RaiseFloor(ulong floor)
    {
        if (floor <= _top)
            return;
        ulong floorBlock = floor >> BlockShift;
        for (int i = 0; i < RingBlocks; i++)
            _ring[i] = ulong.MaxValue; // older than the floor (blocks above it are cleared before reuse as the top moves)
        int bit = (int)(floor & (BlockBits - 1));
        _ring[(int)(floorBlock & RingMask)] = bit == 63 ? ulong.MaxValue : (1UL << (bit + 1)) - 1;
        _top = floor;
    }

    /// <summary>
    /// Infers the high 32 bits of an extended sequence number from its low 32 bits on the wire and the highest
    /// accepted number (RFC 4303 Appendix A2.2, with W = <see cref="WindowSize"/>). Returns false when the packet
    /// would belong before the SA's first sequence number (it cannot be fresh).
    /// </summary>
    public static bool TryInferExtended(ulong top, uint low, out ulong sequence)
    {
        const uint w = WindowSize;
        uint tl = (uint)top;
        uint th = (uint)(top >> 32);
        uint sh;
        if (tl >= w - 1)
        {
            // Case A: the window lies within one 2^32 subspace.
            sh = low >= tl - (w - 1) ? th : th + 1;
            if (sh == 0 && th == uint.MaxValue)
            {
                sequence = 0; // the 64-bit space is exhausted; never happens in practice
                return false;
            }
        }
        else
        {
            // Case B: the window spans two subspaces.
            if (low >= unchecked(tl - (w - 1)))
            {
                if (th == 0)
                {
                    sequence = 0;
                    return false;
                }
                sh = th - 1;
            }
            else
            {
                sh = th;
            }
        }
        sequence = ((ulong)sh << 32) | low;
        return true;
    }
}
