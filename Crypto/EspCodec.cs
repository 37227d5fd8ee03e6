using System.Buffers.Binary;

namespace UserOverlay.Crypto;

/// <summary>The RFC 4303/4106 packet transform, shared by both SA directions. No state, no allocation.</summary>
internal static class EspCodec
{
    /// <summary>Writes header, IV and trailer around the payload and encrypts in place. Returns the ESP packet length.</summary>
    public static int Seal(GcmEngine engine, ReadOnlySpan<byte> salt, uint spi, ulong sequence, bool esn, ReadOnlySpan<byte> iv,
        Span<byte> buffer, int payloadOffset, int payloadLength, byte nextHeader)
    {
        int pad = Esp.PadLength(payloadLength);
        int encrypted = payloadLength + pad + Esp.TrailerLength;
        Span<byte> esp = buffer.Slice(payloadOffset - Esp.HeaderLength, Esp.HeaderLength + encrypted + Esp.IcvLength);

        BinaryPrimitives.WriteUInt32BigEndian(esp, spi);
        BinaryPrimitives.WriteUInt32BigEndian(esp[4..], (uint)sequence);
        iv.CopyTo(esp[Esp.BaseHeaderLength..]);

        // RFC 4303 §2.4: padding bytes are 1, 2, 3, …; then pad length and next header.
        Span<byte> trailer = esp.Slice(Esp.HeaderLength + payloadLength, pad + Esp.TrailerLength);
        for (int i = 0; i < pad; i++)
            trailer[i] = (byte)(i + 1);
        trailer[pad] = (byte)pad;
        trailer[pad + 1] = nextHeader;

        Span<byte> nonce = stackalloc byte[Esp.NonceLength];
        salt.CopyTo(nonce);
        iv.CopyTo(nonce[Esp.SaltLength..]);
        Span<byte> data = esp.Slice(Esp.HeaderLength, encrypted);
        Span<byte> tag = esp.Slice(Esp.HeaderLength + encrypted, Esp.IcvLength);
        if (esn)
        {
            // RFC 4106 §5: AAD = SPI ‖ sequence high ‖ sequence low (the high half is not sent).
            Span<byte> aad = stackalloc byte[12];
            BinaryPrimitives.WriteUInt32BigEndian(aad, spi);
            BinaryPrimitives.WriteUInt64BigEndian(aad[4..], sequence);
            engine.Encrypt(nonce, aad, data, tag);
        }
        else
        {
            // AAD = SPI ‖ sequence: exactly the first 8 bytes of the packet.
            engine.Encrypt(nonce, esp[..Esp.BaseHeaderLength], data, tag);
        }
        return esp.Length;
    }

    /// <summary>Authenticates and decrypts in place; no replay or padding checks.</summary>
    public static bool Decrypt(GcmEngine engine, ReadOnlySpan<byte> salt, ulong sequence, bool esn, Span<byte> esp)
    {
        int encrypted = esp.Length - Esp.HeaderLength - Esp.IcvLength;
        Span<byte> nonce = stackalloc byte[Esp.NonceLength];
        salt.CopyTo(nonce);
        esp.Slice(Esp.BaseHeaderLength, Esp.IvLength).CopyTo(nonce[Esp.SaltLength..]);
        Span<byte> data = esp.Slice(Esp.HeaderLength, encrypted);
        ReadOnlySpan<byte> tag = esp.Slice(Esp.HeaderLength + encrypted, Esp.IcvLength);
        if (esn)
        {
            Span<byte> aad = stackalloc byte[12];
            esp[..4].CopyTo(aad);
            BinaryPrimitives.WriteUInt64BigEndian(aad[4..], sequence);
            return engine.Decrypt(nonce, aad, data, tag);
        }
        return engine.Decrypt(nonce, esp[..Esp.BaseHeaderLength], data, tag);
    }
}
