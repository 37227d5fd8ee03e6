using System.Net;
using UserOverlay.Crypto;

namespace UserOverlay.Samples.Embed;

/// <summary>UserOverlay.Crypto on its own: two hosts' security databases, one packet sealed and opened in place
/// (docs/packages/UserOverlay.Crypto.md shows the part between the example markers).</summary>
internal static class CryptoExample
{
    public static bool Run()
    {
        // <example>
        var key = new NetworkKey("blue", Enumerable.Range(1, 32).Select(i => (byte)i).ToArray()); // 32 bytes: AES-256
        var keys = new StaticNetworkKeySource([key]);
        IPAddress hostA = IPAddress.Parse("192.0.2.1"), hostB = IPAddress.Parse("192.0.2.2");
        using var a = new EspSecurityDatabase(hostA, keys, new EspOptions { SequenceStore = new InMemorySequenceStore() }, DateTimeOffset.UtcNow);
        using var b = new EspSecurityDatabase(hostB, keys, new EspOptions { SequenceStore = new InMemorySequenceStore() }, DateTimeOffset.UtcNow);
        EspPeer toB = a.AddPeer("blue", hostB); // each host adds the other: its send handle and its receive SAs
        b.AddPeer("blue", hostA);

        // Seal in place: headroom for the ESP header before the payload, tailroom for padding and the ICV after it.
        byte[] buffer = new byte[Esp.HeaderLength + 64 + Esp.MaxTrailerLength];
        "a UDP datagram (UDP | VXLAN | frame)"u8.CopyTo(buffer.AsSpan(Esp.HeaderLength));
        if (toB.Seal(buffer, Esp.HeaderLength, 64, Esp.NextHeaderUdp, out int espLength) != EspSealStatus.Ok)
            return false;

        // Host B opens what arrived: authenticated, decrypted in place, replay-checked.
        EspOpenStatus status = b.Open(buffer.AsSpan(0, espLength), out int offset, out int length, out byte next, out InboundSa? sa);
        Console.WriteLine($"crypto: {espLength}-byte ESP packet opened: {status}, {length} bytes, key {sa?.KeyId}");
        // </example>
        return status == EspOpenStatus.Ok && length == 64 && next == Esp.NextHeaderUdp
            && buffer.AsSpan(offset, 36).SequenceEqual("a UDP datagram (UDP | VXLAN | frame)"u8);
    }
}
