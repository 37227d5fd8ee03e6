using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Security.Cryptography;
using Org.BouncyCastle.Crypto;
using Org.BouncyCastle.Crypto.Modes;
using Org.BouncyCastle.Crypto.Parameters;

namespace UserOverlay.Crypto;

/// <summary>BouncyCastle GcmBlockCipher. Re-initialised per packet with the key schedule kept (null key parameter).</summary>
internal sealed class BouncyCastleGcmEngine : GcmEngine
{
    private readonly GcmBlockCipher _gcm = new(AesUtilities.CreateEngine());
    private readonly byte[] _nonce = new byte[Esp.NonceLength];
    private readonly AeadParameters _reinit; // holds _nonce by reference; BouncyCastle clones it in Init

    public BouncyCastleGcmEngine(ReadOnlySpan<byte> key)
    {
        // Set the key once (decrypt direction, so the throw-away nonce never trips the encrypt-side reuse check).
        byte[] first = new byte[Esp.NonceLength];
        first.AsSpan().Fill(0xA5);
        _gcm.Init(false, new AeadParameters(new KeyParameter(key), Esp.IcvLength * 8, first));
        _reinit = new AeadParameters(null, Esp.IcvLength * 8, _nonce);
    }

    public override void Encrypt(ReadOnlySpan<byte> nonce, ReadOnlySpan<byte> aad, Span<byte> data, Span<byte> tag)
    {
        nonce.CopyTo(_nonce);
        _gcm.Init(true, _reinit);
        _gcm.ProcessAadBytes(aad);
        if (Adjacent(data, tag))
        {
            Span<byte> all = MemoryMarshal.CreateSpan(ref MemoryMarshal.GetReference(data), data.Length + tag.Length);
            int n = _gcm.ProcessBytes(data, all);
            _gcm.DoFinal(all[n..]);
        }
        else
        {
            byte[] tmp = new byte[data.Length + tag.Length];
            int n = _gcm.ProcessBytes(data, tmp);
            _gcm.DoFinal(tmp.AsSpan(n));
            tmp.AsSpan(0, data.Length).CopyTo(data);
            tmp.AsSpan(data.Length).CopyTo(tag);
        }
    }

    public override bool Decrypt(ReadOnlySpan<byte> nonce, ReadOnlySpan<byte> aad, Span<byte> data, ReadOnlySpan<byte> tag)
    {
        nonce.CopyTo(_nonce);
        _gcm.Init(false, _reinit);
        _gcm.ProcessAadBytes(aad);
        try
        {
            if (Adjacent(data, tag))
            {
                ReadOnlySpan<byte> all = MemoryMarshal.CreateReadOnlySpan(ref MemoryMarshal.GetReference(data), data.Length + tag.Length);
                int n = _gcm.ProcessBytes(all, data);
                _gcm.DoFinal(data[n..]);
            }
            else
            {
                byte[] tmp = new byte[data.Length + tag.Length];
                data.CopyTo(tmp);
                tag.CopyTo(tmp.AsSpan(data.Length));
                int n = _gcm.ProcessBytes(tmp, data);
                _gcm.DoFinal(data[n..]);
            }
            return true;
        }
        catch (InvalidCipherTextException)
        {
            // GcmBlockCipher has already written the unauthenticated plaintext; do not release it (as AesGcm does).
            CryptographicOperations.ZeroMemory(data);
            return false;
        }
    }

    private static bool Adjacent(ReadOnlySpan<byte> data, ReadOnlySpan<byte> tag) =>
        Unsafe.AreSame(ref Unsafe.Add(ref MemoryMarshal.GetReference(data), data.Length), ref MemoryMarshal.GetReference(tag));

    public override void Dispose() => _gcm.Reset();
}
