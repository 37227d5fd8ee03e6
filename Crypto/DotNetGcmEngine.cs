using System.Security.Cryptography;

namespace UserOverlay.Crypto;

/// <summary>.NET AesGcm. One instance holds one OpenSSL cipher context, which is not safe for concurrent use.</summary>
internal sealed class DotNetGcmEngine(ReadOnlySpan<byte> key) : GcmEngine
{
    // Explicit tag size (the size-less constructor is obsolete).
    private readonly AesGcm _aes = new(key, Esp.IcvLength);

    public override void Encrypt(ReadOnlySpan<byte> nonce, ReadOnlySpan<byte> aad, Span<byte> data, Span<byte> tag) =>
        _aes.Encrypt(nonce, data, data, tag, aad);

    public override bool Decrypt(ReadOnlySpan<byte> nonce, ReadOnlySpan<byte> aad, Span<byte> data, ReadOnlySpan<byte> tag)
    {
        try
        {
            _aes.Decrypt(nonce, data, tag, data, aad);
            return true;
        }
        catch (AuthenticationTagMismatchException)
        {
            // AesGcm has no non-throwing decrypt (as of .NET 10). Only packets that pass the SPI lookup and the
            // replay pre-check get here, and each is counted as AuthenticationFailed.
            return false;
        }
    }

    public override void Dispose() => _aes.Dispose();
}
