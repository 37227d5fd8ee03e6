using System.Buffers.Binary;
using System.Diagnostics.CodeAnalysis;
using System.Globalization;

namespace UserOverlay.Router;

/// <summary>
/// A 48-bit Ethernet MAC address held in the low 48 bits of a <see cref="ulong"/> (first octet
/// most significant), so tables key on integers, never strings.
/// </summary>
public readonly record struct MacAddress(ulong Value) : ISpanFormattable
{
    /// <summary>ff:ff:ff:ff:ff:ff.</summary>
    public static readonly MacAddress Broadcast = new(0xFFFF_FFFF_FFFF);

    /// <summary>True for group (multicast/broadcast) addresses: the I/G bit of the first octet.</summary>
    public bool IsMulticast => (Value & 0x0100_0000_0000) != 0;

    /// <summary>True for the all-zero address.</summary>
    public bool IsZero => Value == 0;

    /// <summary>Reads 6 bytes, first octet first.</summary>
    public static MacAddress Read(ReadOnlySpan<byte> b) =>
        new(((ulong)BinaryPrimitives.ReadUInt32BigEndian(b) << 16) | BinaryPrimitives.ReadUInt16BigEndian(b[4..]));

    /// <summary>Writes 6 bytes, first octet first.</summary>
    public void Write(Span<byte> b)
    {
        BinaryPrimitives.WriteUInt32BigEndian(b, (uint)(Value >> 16));
        BinaryPrimitives.WriteUInt16BigEndian(b[4..], (ushort)Value);
    }

    /// <summary>
    /// The MAC UserOverlay gives an endpoint whose configuration names none: 02:00 followed by the
    /// four IPv4 octets (locally administered, unicast), as Docker derives 02:42:… from the address.
    /// </summary>
    public static MacAddress FromIPv4(System.Net.IPAddress address)
    {
        Span<byte> ip = stackalloc byte[4];
        if (!address.TryWriteBytes(ip, out int n) || n != 4)
            throw new ArgumentException("an IPv4 address is required", nameof(address));
        return new MacAddress(0x0200_0000_0000UL | BinaryPrimitives.ReadUInt32BigEndian(ip));
    }

    /// <summary>Parses "02:00:c6:12:00:0b" (also with '-' separators).</summary>
    public static bool TryParse(string? s, out MacAddress mac)
    {
        mac = default;
        if (s is null || s.Length != 17) return false;
        ulong v = 0;
        for (int i = 0; i < 6; i++)
        {
            if (i > 0 && s[i * 3 - 1] is not (':' or '-')) return false;
            if (!byte.TryParse(s.AsSpan(i * 3, 2), NumberStyles.AllowHexSpecifier, CultureInfo.InvariantCulture, out byte octet))
                return false;
            v = (v << 8) | octet;
        }
        mac = new MacAddress(v);
        return true;
    }

    /// <summary>Parses or throws <see cref="FormatException"/>.</summary>
    public static MacAddress Parse(string s) =>
        TryParse(s, out var m) ? m : throw new FormatException($"'{s}' is not a MAC address (expected six hex octets like 02:00:c6:12:00:0b)");

    public override string ToString() => string.Create(17, Value, static (span, v) => Format(span, v));

    public string ToString(string? format, IFormatProvider? formatProvider) => ToString();

    public bool TryFormat(Span<char> destination, out int charsWritten, ReadOnlySpan<char> format, IFormatProvider? provider)
    {
        if (destination.Length < 17) { charsWritten = 0; return false; }
        Format(destination, Value);
        charsWritten = 17;
        return true;
    }

    private static void Format(Span<char> span, ulong v)
    {
        const string hex = "0123456789abcdef";
        for (int i = 0; i < 6; i++)
        {
            byte octet = (byte)(v >> (40 - 8 * i));
            span[i * 3] = hex[octet >> 4];
            span[i * 3 + 1] = hex[octet & 0xF];
            if (i < 5) span[i * 3 + 2] = ':';
        }
    }
}
