using System.Buffers.Binary;

namespace UserOverlay.Crypto.Tests;

/// <summary>Published full-packet vectors: draft-mcgrew-gcm-test-01 §4 (including the ESN cases) and packets Wireshark verified.</summary>
public class VectorTests
{
    public static TheoryData<int, GcmBackend> Cases()
    {
        var data = new TheoryData<int, GcmBackend>();
        for (int i = 0; i < McGrewVector.All.Length; i++)
        {
            data.Add(i, GcmBackend.AesGcm);
            data.Add(i, GcmBackend.BouncyCastle);
            data.Add(i, GcmBackend.Intrinsics);
        }
        return data;
    }

    private static EspSaParameters Parameters(McGrewVector v, GcmBackend backend) => new()
    {
        Spi = BinaryPrimitives.ReadUInt32BigEndian(Hex.Bytes(v.Spi)),
        Key = Hex.Bytes(v.Key),
        Salt = Hex.Bytes(v.Nonce)[..4],
        ExtendedSequenceNumbers = v.Seq.Length == 16,
        Backend = backend,
    };

    private static ulong Sequence(McGrewVector v) =>
        v.Seq.Length == 16 ? BinaryPrimitives.ReadUInt64BigEndian(Hex.Bytes(v.Seq)) : BinaryPrimitives.ReadUInt32BigEndian(Hex.Bytes(v.Seq));

    [Theory]
    [MemberData(nameof(Cases))]
    public void Open_accepts_the_published_packet_and_yields_the_published_plaintext(int index, GcmBackend backend)
    {
        McGrewVector v = McGrewVector.All[index];
        using var sa = new InboundSa(Parameters(v, backend));
        ulong seq = Sequence(v);
        if (seq > 1)
            sa.AcceptForTest(seq - 1); // put the window where a receiver of this stream would be (ESN: infers the high half)
        byte[] packet = Hex.Bytes(v.Packet);
        byte[] plaintext = Hex.Bytes(v.Plaintext);

        EspOpenStatus status = sa.Open(packet, out int off, out int len, out byte next);

        Assert.Equal(EspOpenStatus.Ok, status);
        Assert.Equal(Esp.HeaderLength, off);
        Assert.Equal(Hex.Of(plaintext), Hex.Of(packet.AsSpan(Esp.HeaderLength, plaintext.Length)));
        int pad = plaintext[^2];
        Assert.Equal(plaintext.Length - 2 - pad, len);
        Assert.Equal(plaintext[^1], next);
        Assert.Equal(seq, sa.HighestSequence);
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public void Seal_reproduces_the_published_packet_byte_for_byte(int index, GcmBackend backend)
    {
        McGrewVector v = McGrewVector.All[index];
        using var sa = new OutboundSa(Parameters(v, backend));
        byte[] plaintext = Hex.Bytes(v.Plaintext);
        int pad = plaintext[^2];
        int payloadLength = plaintext.Length - 2 - pad;
        Assert.Equal(pad, Esp.PadLength(payloadLength)); // every published case uses minimal RFC 4303 padding, as Seal does

        byte[] buffer = Packets.InBuffer(plaintext.AsSpan(0, payloadLength), headroom: Esp.HeaderLength);
        int n = sa.SealExplicit(buffer, Esp.HeaderLength, payloadLength, plaintext[^1], Sequence(v), Hex.Bytes(v.Nonce).AsSpan(4));

        Assert.Equal(v.Packet, Hex.Of(buffer.AsSpan(0, n)));
    }

    [Theory]
    [InlineData(GcmBackend.AesGcm)]
    [InlineData(GcmBackend.BouncyCastle)]
    [InlineData(GcmBackend.Intrinsics)]
    public void Tampered_published_packets_fail_authentication(GcmBackend backend)
    {
        foreach (McGrewVector v in McGrewVector.All)
        {
            for (int flip = 0; flip < 3; flip++)
            {
                using var sa = new InboundSa(Parameters(v, backend));
                ulong seq = Sequence(v);
                if (seq > 1)
                    sa.AcceptForTest(seq - 1);
                byte[] packet = Hex.Bytes(v.Packet);
                int at = flip switch { 0 => 9, 1 => Esp.HeaderLength, _ => packet.Length - 1 }; // IV, ciphertext, ICV
                packet[at] ^= 0x01;
                Assert.Equal(EspOpenStatus.AuthenticationFailed, sa.Open(packet, out _, out _, out _));
                // Nothing unauthenticated is released: every backend zeroes the in-place buffer.
                Assert.True(packet.AsSpan(Esp.HeaderLength, packet.Length - Esp.HeaderLength - Esp.IcvLength).IndexOfAnyExcept((byte)0) < 0);
            }
        }
    }

    // First packet of esp_transport_aes128.pcap, a reference capture whose ICVs Wireshark 4.0 verifies
    // (SPI 0x00001234, key 00112233445566778899aabbccddeeff, salt deadbeef, 192.0.2.1 -> 192.0.2.2, VNI 4096, ICMP echo seq 1).
    private const string CapturedTransportEsp =
        "000012340000000100000000000000011e20470e8386099a197c3e33fb967449e53231d2541dceb169829a467fbfd345af2569571c5b22ff82cad3c4a1abd378945a2e27ac4ed2431ac46cd30bc59f474395b9319aa31d287b55b6b9350a47e7e97f44dd816b856de8a5988beb5014cfcb4bd4051f1dc2885780bc04f27d0d4b9e4912f6f7ef611e5010314d502fc744";

    // First packet of esp_natt_aes256.pcap (ESP-in-UDP 4500): SPI 0x00005678, key 000102..1f, salt 01020304, VNI 4097.
    private const string CapturedNattEsp =
        "00005678000000011000000000000000bea8cb307e28355a6d6245d58b630b97b5527b7002728fa426d47b8f3db392004b1be52d01423ea286a0e0797e89c6c3740125d9aeaeeed0ddd12a86cf32f080134615de16c61adeb66ed296d601078a89ea22ca5641e8c5873dd1fc4fc18bd693758dc92aba92682ca9411404064f0a671094a84db16ed922ef7fd135f59836";

    [Theory]
    [InlineData(CapturedTransportEsp, 0x1234u, "00112233445566778899aabbccddeeff", "deadbeef", 4096u)]
    [InlineData(CapturedNattEsp, 0x5678u, "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f", "01020304", 4097u)]
    public void Opens_packets_of_a_reference_capture_verified_by_wireshark(string esp, uint spi, string key, string salt, uint vni)
    {
        using var sa = new InboundSa(new EspSaParameters { Spi = spi, Key = Hex.Bytes(key), Salt = Hex.Bytes(salt) });
        byte[] packet = Hex.Bytes(esp);
        Assert.Equal(EspOpenStatus.Ok, sa.Open(packet, out int off, out int len, out byte next));
        Assert.Equal(Esp.NextHeaderUdp, next);
        Span<byte> udp = packet.AsSpan(off, len);
        Assert.Equal(4789, BinaryPrimitives.ReadUInt16BigEndian(udp[2..]));
        Assert.Equal(len, BinaryPrimitives.ReadUInt16BigEndian(udp[4..]));
        Assert.Equal(vni, BinaryPrimitives.ReadUInt32BigEndian(udp[12..]) >> 8);
        Assert.Equal(0x0800, BinaryPrimitives.ReadUInt16BigEndian(udp[(16 + 12)..]));
        Assert.Equal(8, udp[16 + 14 + 20]); // ICMP echo request
    }

    [Fact]
    public void Seal_reproduces_the_reference_capture_exactly()
    {
        // The reference producer uses IV = 64-bit sequence number, as Seal does, so decrypt-then-reseal must give the same bytes.
        var p = new EspSaParameters { Spi = 0x1234, Key = Hex.Bytes("00112233445566778899aabbccddeeff"), Salt = Hex.Bytes("deadbeef") };
        using var inbound = new InboundSa(p);
        using var outbound = new OutboundSa(p);
        byte[] packet = Hex.Bytes(CapturedTransportEsp);
        Assert.Equal(EspOpenStatus.Ok, inbound.Open(packet, out int off, out int len, out byte next));
        byte[] buffer = Packets.InBuffer(packet.AsSpan(off, len), headroom: Esp.HeaderLength);

        Assert.Equal(EspSealStatus.Ok, outbound.Seal(buffer, Esp.HeaderLength, len, next, out int espLength));
        Assert.Equal(CapturedTransportEsp, Hex.Of(buffer.AsSpan(0, espLength)));
    }
}
