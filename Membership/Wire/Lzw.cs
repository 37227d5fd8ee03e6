// LZW as Go's compress/lzw writes and reads it with Order = LSB and litWidth = 8 (memberlist's
// compressPayload/decompressBuffer). Written from the algorithm's description and the observed
// bytes, not from Go's source:
//   * codes start at 9 bits and grow to 12; 256 = clear, 257 = end of stream; the first dictionary
//     entry is 258;
//   * codes are packed least-significant bit first;
//   * the encoder emits a clear code first (Go >= 1.17), widens after the code that makes the next
//     free code reach 2^width, and when the next free code would reach 4095 it emits a clear code
//     (at the current width) and starts over;
//   * the stream ends with the pending code, the end code, and the remaining bits.
// The encoder is byte-exact with Go's (the tests re-encode captured serf payloads and compare).
// Deliberately simple: a Dictionary keyed by (prefix code << 8 | byte); gossip payloads are small.

namespace UserOverlay.Membership.Wire;

/// <summary>Go-compatible LZW (LSB, 8-bit literals). Stateless and thread-safe.</summary>
internal static class Lzw
{
    private const int LitWidth = 8;
    private const int ClearCode = 1 << LitWidth;   // 256
    private const int EofCode = ClearCode + 1;     // 257
    private const int MaxWidth = 12;
    private const int MaxCode = (1 << MaxWidth) - 1; // 4095

    /// <summary>Compresses <paramref name="input"/> exactly as Go's lzw.NewWriter(w, lzw.LSB, 8) does.</summary>
    public static byte[] Compress(ReadOnlySpan<byte> input)
    {
        var output = new List<byte>(input.Length / 2 + 16);
        uint bits = 0;
        int nBits = 0;
        int width = LitWidth + 1;
        int hi = EofCode;              // last assigned code; the next new entry is hi + 1
        int overflow = 1 << width;
        var table = new Dictionary<int, int>();

        void Write(int code)
        {
            bits |= (uint)code << nBits;
            nBits += width;
            while (nBits >= 8)
            {
                output.Add((byte)bits);
                bits >>= 8;
                nBits -= 8;
            }
        }

        // Returns false when the code space ran out and the encoder was reset.
        bool IncHi()
        {
            hi++;
            if (hi == overflow)
            {
                width++;
                overflow <<= 1;
            }
            if (hi == MaxCode)
            {
                Write(ClearCode);
                width = LitWidth + 1;
                hi = EofCode;
                overflow = 1 << width;
                table.Clear();
                return false;
            }
            return true;
        }

        Write(ClearCode);
        if (input.Length == 0)
        {
            Write(EofCode);
            if (nBits > 0) output.Add((byte)bits);
            return [.. output];
        }

        int code = input[0];
        for (int i = 1; i < input.Length; i++)
        {
            int literal = input[i];
            int key = code << 8 | literal;
            if (table.TryGetValue(key, out int existing))
            {
                code = existing;
                continue;
            }
            Write(code);
            code = literal;
            if (!IncHi()) continue;
            table[key] = hi;
        }
        Write(code);
        IncHi();
        Write(EofCode);
        if (nBits > 0) output.Add((byte)bits);
        return [.. output];
    }

    /// <summary>
    /// Decompresses Go LZW (LSB, 8-bit literals) up to its end code. Throws <see cref="InvalidDataException"/>
    /// on an invalid code, a stream without an end code, or output larger than <paramref name="maxOutput"/>.
    /// </summary>
    public static byte[] Decompress(ReadOnlySpan<byte> input, int maxOutput = ProtocolConstants.MaxDecompressedSize)
    {
        var output = new List<byte>(input.Length * 3);
        var prefix = new int[1 << MaxWidth];
        var suffix = new byte[1 << MaxWidth];
        var stack = new byte[1 << MaxWidth];

        int width = LitWidth + 1;
        int hi = EofCode;
        int overflow = 1 << width;
        int last = -1;
        uint bits = 0;
        int nBits = 0;
        int pos = 0;

        while (true)
        {
            while (nBits < width)
            {
                if (pos >= input.Length) throw new InvalidDataException("lzw: stream ended without an end code");
                bits |= (uint)input[pos++] << nBits;
                nBits += 8;
            }
            int code = (int)(bits & ((1u << width) - 1));
            bits >>= width;
            nBits -= width;

            if (code == ClearCode)
            {
                width = LitWidth + 1;
                hi = EofCode;
                overflow = 1 << width;
                last = -1;
                continue;
            }
            if (code == EofCode) break;

            int sp = 0;
            if (code < ClearCode)
            {
                stack[sp++] = (byte)code;
                if (last != -1)
                {
                    suffix[hi] = (byte)code;
                    prefix[hi] = last;
                }
            }
            else if (code <= hi)
            {
                int c = code;
                if (code == hi)
                {
                    // The KwKwK case: code not yet defined; it is last's expansion plus its first byte.
                    if (last == -1) throw new InvalidDataException("lzw: invalid code");
                    int first = last;
                    while (first >= ClearCode) first = prefix[first];
                    stack[sp++] = (byte)first;
                    c = last;
                }
                while (c >= ClearCode)
                {
                    if (sp >= stack.Length) throw new InvalidDataException("lzw: invalid code chain");
                    stack[sp++] = suffix[c];
                    c = prefix[c];
                }
                stack[sp++] = (byte)c;
                if (last != -1)
                {
                    suffix[hi] = (byte)c;
                    prefix[hi] = last;
                }
            }
            else
            {
                throw new InvalidDataException("lzw: invalid code");
            }

            if (output.Count + sp > maxOutput) throw new InvalidDataException("lzw: decompressed data too large");
            for (int i = sp - 1; i >= 0; i--) output.Add(stack[i]);

            last = code;
            hi++;
            if (hi >= overflow)
            {
                if (width == MaxWidth)
                {
                    last = -1;
                    hi--;
                }
                else
                {
                    width++;
                    overflow = 1 << width;
                }
            }
        }
        return [.. output];
    }
}
