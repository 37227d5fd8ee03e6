using System.Diagnostics.CodeAnalysis;
using System.Runtime.CompilerServices;

namespace UserOverlay.Crypto;

/// <summary>Throws for programming errors, kept out of hot methods so they stay small (Kestrel's MemoryPoolThrowHelper).</summary>
internal static class ThrowHelper
{
    [DoesNotReturn, MethodImpl(MethodImplOptions.NoInlining)]
    public static void Headroom(int payloadOffset) =>
        throw new ArgumentOutOfRangeException(nameof(payloadOffset), payloadOffset,
            $"Seal needs {Esp.HeaderLength} bytes of headroom before the payload for the ESP header and IV.");

    [DoesNotReturn, MethodImpl(MethodImplOptions.NoInlining)]
    public static void Tailroom(int needed, int available) =>
        throw new ArgumentException(
            $"Seal needs {needed} bytes after the payload start (payload, up to {Esp.MaxPadLength} padding, {Esp.TrailerLength} trailer, {Esp.IcvLength} ICV) but the buffer has {available}.",
            "buffer");

    [DoesNotReturn, MethodImpl(MethodImplOptions.NoInlining)]
    public static void PayloadLength(int payloadLength) =>
        throw new ArgumentOutOfRangeException(nameof(payloadLength), payloadLength, "payload length must not be negative.");
}
