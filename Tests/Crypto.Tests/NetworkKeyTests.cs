using System.Security.Cryptography;

namespace UserOverlay.Crypto.Tests;

public class NetworkKeyTests
{
    [Theory]
    [InlineData(16)]
    [InlineData(32)]
    public void Base64_keys_of_16_and_32_bytes_are_accepted(int n)
    {
        byte[] secret = RandomNumberGenerator.GetBytes(n);
        var k = NetworkKey.FromBase64("net", " " + Convert.ToBase64String(secret) + "\n");
        Assert.Equal(secret, k.Secret.ToArray());
        Assert.DoesNotContain(Convert.ToHexStringLower(secret), k.ToString());
    }

    [Theory]
    [InlineData(24)]
    [InlineData(8)]
    [InlineData(0)]
    public void Other_lengths_are_rejected_with_the_reason(int n)
    {
        var ex = Assert.Throws<FormatException>(() => NetworkKey.FromBase64("net", Convert.ToBase64String(new byte[n])));
        Assert.Contains("16 (AES-128) or 32 (AES-256)", ex.Message);
        Assert.Throws<FormatException>(() => NetworkKey.FromBase64("net", "not base64!"));
    }

    [Fact]
    public void Key_files_hold_base64_or_raw_bytes()
    {
        string dir = Path.Combine(Path.GetTempPath(), "uo-crypto-" + Guid.NewGuid().ToString("n"));
        Directory.CreateDirectory(dir);
        try
        {
            byte[] secret = RandomNumberGenerator.GetBytes(32);
            File.WriteAllText(Path.Combine(dir, "b64"), Convert.ToBase64String(secret) + "\n");
            File.WriteAllBytes(Path.Combine(dir, "raw"), secret);
            File.WriteAllBytes(Path.Combine(dir, "bad"), new byte[20]);
            Assert.Equal(secret, NetworkKey.FromFile("n", Path.Combine(dir, "b64")).Secret.ToArray());
            Assert.Equal(secret, NetworkKey.FromFile("n", Path.Combine(dir, "raw")).Secret.ToArray());
            Assert.Throws<FormatException>(() => NetworkKey.FromFile("n", Path.Combine(dir, "bad")));
        }
        finally
        {
            Directory.Delete(dir, true);
        }
    }
}
