namespace UserOverlay.Crypto.Tests;

internal static class Hex
{
    public static byte[] Bytes(string hex) => Convert.FromHexString(hex);

    public static string Of(ReadOnlySpan<byte> b) => Convert.ToHexStringLower(b);
}
