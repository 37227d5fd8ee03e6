using System.Net;
using UserOverlay.Membership.Security;
using UserOverlay.Membership.Wire;
using static UserOverlay.Membership.Tests.CaptureVectors;

namespace UserOverlay.Membership.Tests;

/// <summary>Decoding and byte-exact re-encoding of memberlist messages captured between real serf agents.</summary>
public class WireTests
{
    private static readonly byte[] Key00To0F = Convert.FromHexString("000102030405060708090a0b0c0d0e0f");

    private delegate T ReadFn<out T>(ref MsgPackReader r);

    private static T Read<T>(ReadOnlySpan<byte> body, ReadFn<T> fn)
    {
        var r = new MsgPackReader(body);
        T v = fn(ref r);
        Assert.True(r.End, "the whole body was consumed");
        return v;
    }

    [Fact]
    public void Ping_DecodesAndReencodesByteExact()
    {
        byte[] frame = Bytes(PlainFrame20);
        Assert.Equal((byte)MessageType.Ping, frame[0]);
        var ping = Read(frame.AsSpan(1), PingMessage.Read);
        Assert.Equal("n1", ping.Node);
        Assert.Equal(1u, ping.SeqNo);
        Assert.Equal(IPAddress.Parse("192.0.2.22"), new IPAddress(ping.SourceAddr!));
        Assert.Equal("n2", ping.SourceNode);
        Assert.Equal(7946, ping.SourcePort);
        Assert.Equal(frame, MessageCodec.Encode(ping));
    }

    [Fact]
    public void PingWithoutSourceFields_OmitsThem()
    {
        var bytes = MessageCodec.Encode(new PingMessage(7, "x"));
        Assert.Equal(Convert.FromHexString("0082a44e6f6465a178a55365714e6f07"), bytes);
    }

    [Fact]
    public void Ack_WithSerfCoordinatePayload_ReencodesByteExact()
    {
        byte[] frame = Bytes(PlainFrame21);
        var ack = Read(frame.AsSpan(1), AckRespMessage.Read);
        Assert.Equal(1u, ack.SeqNo);
        Assert.Equal(130, ack.Payload!.Length);
        Assert.Equal(1, ack.Payload[0]); // serf ping version
        Assert.Equal(frame, MessageCodec.Encode(ack));
    }

    [Fact]
    public void Ack_NilPayload_IsC0()
    {
        Assert.Equal(Convert.FromHexString("0282a75061796c6f6164c0a55365714e6f05"), MessageCodec.Encode(new AckRespMessage(5, null)));
    }

    [Fact]
    public void CrcCompoundOfAlives_VerifiesSplitsAndReencodes()
    {
        byte[] frame = Bytes(PlainFrame11);
        Assert.True(Compound.TryCheckCrc(frame, out var inner));
        Assert.Equal((byte)MessageType.Compound, inner.Span[0]);
        var parts = new List<ReadOnlyMemory<byte>>();
        Assert.True(Compound.TrySplit(inner[1..], parts, out int trunc));
        Assert.Equal(0, trunc);
        Assert.Equal(2, parts.Count);
        var alive = Read(parts[0].Span[1..], AliveMessage.Read);
        Assert.Equal("n1", alive.Node);
        Assert.Equal(1u, alive.Incarnation);
        Assert.Equal(IPAddress.Parse("192.0.2.21"), new IPAddress(alive.Addr));
        Assert.Equal(7946, alive.Port);
        Assert.Equal(Convert.FromHexString("010502020505"), alive.Vsn);
        Assert.Equal(Convert.FromHexString("ff81a4726f6c65a3776562"), alive.Meta); // serf tags {"role":"web"}
        Assert.Equal(parts[0].ToArray(), MessageCodec.Encode(alive));
        // Rebuild the whole datagram: compound + CRC.
        var rebuilt = Compound.AddCrc(Compound.Make([.. parts.Select(p => p.ToArray())]));
        Assert.Equal(frame, rebuilt);
    }

    [Fact]
    public void CorruptedCrc_IsDetected()
    {
        byte[] frame = Bytes(PlainFrame11);
        frame[^1] ^= 1;
        Assert.False(Compound.TryCheckCrc(frame, out _));
    }

    [Theory]
    [InlineData(nameof(PlainFrame12), 5)] // hasCrc(compress(compound(alive, alive, user)))
    [InlineData(nameof(PlainFrame19), 0)] // compress(compound(ackResp, alive, alive, user))
    [InlineData(nameof(PlainFrame4), 0)]  // TCP compress(pushPull)
    [InlineData(nameof(PlainFrame6), 0)]
    [InlineData(nameof(ThreeNodeFrame57), 0)] // TCP compress(ping)
    [InlineData(nameof(ThreeNodeFrame139), 0)] // TCP compress(ackResp)
    public void Lzw_DecompressesSerfPayloadsAndRecompressesByteExact(string vector, int skip)
    {
        byte[] frame = Bytes((string)typeof(CaptureVectors).GetField(vector)!.GetValue(null)!);
        var body = frame.AsSpan(skip);
        Assert.Equal((byte)MessageType.Compress, body[0]);
        var r = new MsgPackReader(body[1..]);
        var c = CompressMessage.Read(ref r);
        Assert.Equal(CompressMessage.AlgoLzw, c.Algo);
        byte[] plain = Lzw.Decompress(c.Buf);
        Assert.True(plain.Length > 0);
        Assert.Equal(c.Buf, Lzw.Compress(plain));
        // And the whole compress message re-encodes identically.
        Assert.Equal(body.ToArray(), MessageCodec.Compress(plain));
    }

    [Fact]
    public void PushPull_FromSerf_Decodes()
    {
        byte[] frame = Bytes(PlainFrame4);
        byte[] plain = MessageCodec.Decompress(frame.AsSpan(1));
        Assert.Equal((byte)MessageType.PushPull, plain[0]);
        var r = new MsgPackReader(plain.AsSpan(1));
        var header = PushPullHeader.Read(ref r);
        Assert.Equal(new PushPullHeader(1, 586, true), header);
        var node = PushNodeState.Read(ref r);
        Assert.Equal("n2", node.Name);
        Assert.Equal(MemberState.Alive, node.State);
        Assert.Equal(IPAddress.Parse("192.0.2.22"), new IPAddress(node.Addr));
        Assert.Equal(586, r.Remaining); // serf's user state follows
        Assert.Equal(2, r.Rest[0]);       // serf message type 2 = pushPull

        // Our encoder writes the same header and node state bytes.
        var w = new MsgPackWriter();
        w.WriteByte((byte)MessageType.PushPull);
        header.Write(w);
        node.Write(w);
        Assert.Equal(plain.AsSpan(0, plain.Length - 586).ToArray(), w.ToArray());
    }

    [Fact]
    public void IndirectPing_ReencodesByteExact()
    {
        byte[] frame = Bytes(ThreeNodeFrame52);
        var ind = Read(frame.AsSpan(1), IndirectPingMessage.Read);
        Assert.True(ind.Nack);
        Assert.Equal("n3", ind.Node);
        Assert.Equal(IPAddress.Parse("192.0.2.23"), new IPAddress(ind.Target));
        Assert.Equal(frame, MessageCodec.Encode(ind));
    }

    [Fact]
    public void SuspectDeadNack_ReencodeByteExact()
    {
        byte[] suspect = Bytes(ThreeNodeFrame72);
        Assert.True(Compound.TryCheckCrc(suspect, out var s));
        var sm = Read(s.Span[1..], SuspectOrDeadMessage.Read);
        Assert.Equal(new SuspectOrDeadMessage(1, "n3", "n1"), sm);
        Assert.Equal(suspect, Compound.AddCrc(MessageCodec.EncodeSuspect(sm)));

        byte[] dead = Bytes(ThreeNodeFrame107);
        Assert.True(Compound.TryCheckCrc(dead, out var d));
        Assert.Equal((byte)MessageType.Dead, d.Span[0]);
        var dm = Read(d.Span[1..], SuspectOrDeadMessage.Read);
        Assert.Equal(dead, Compound.AddCrc(MessageCodec.EncodeDead(dm)));

        byte[] nack = Bytes(ThreeNodeFrame101);
        var nm = Read(nack.AsSpan(1), NackRespMessage.Read);
        Assert.Equal(nack, MessageCodec.Encode(nm));
    }

    [Fact]
    public void CompoundAckAndRefutingAlive_Splits()
    {
        byte[] frame = Bytes(ThreeNodeFrame153);
        var parts = new List<ReadOnlyMemory<byte>>();
        Assert.True(Compound.TrySplit(frame.AsMemory(1), parts, out _));
        Assert.Equal(2, parts.Count);
        Assert.Equal((byte)MessageType.AckResp, parts[0].Span[0]);
        var alive = Read(parts[1].Span[1..], AliveMessage.Read);
        Assert.Equal("n3", alive.Node);
        Assert.Equal(2u, alive.Incarnation); // refuted
        Assert.Equal(parts[1].ToArray(), MessageCodec.Encode(alive));
    }

    [Fact]
    public void TruncatedCompound_KeepsCompletePartsAndCountsTheRest()
    {
        byte[] frame = Bytes(ThreeNodeFrame153);
        var parts = new List<ReadOnlyMemory<byte>>();
        Assert.True(Compound.TrySplit(frame.AsMemory(1, frame.Length - 10), parts, out int trunc));
        Assert.Single(parts);
        Assert.Equal(1, trunc);
        Assert.False(Compound.TrySplit(frame.AsMemory(1, 2), [], out _));
    }

    [Fact]
    public void EncryptedUdpPing_FromSerf_Decrypts()
    {
        byte[] frame = Bytes(Aes128Frame20);
        Assert.Equal(90, frame.Length);
        var plain = PayloadCrypto.TryDecrypt([Key00To0F], frame, []);
        Assert.NotNull(plain);
        var ping = Read(plain.AsSpan(1), PingMessage.Read);
        Assert.Equal("n1", ping.Node);
        // Wrong key and tampering both fail.
        Assert.Null(PayloadCrypto.TryDecrypt([new byte[16]], frame, []));
        frame[20] ^= 0x40;
        Assert.Null(PayloadCrypto.TryDecrypt([Key00To0F], frame, []));
    }

    [Fact]
    public void EncryptedTcpPushPull_FromSerf_DecryptsWithHeaderAsAad()
    {
        byte[] frame = Bytes(Aes128Frame4);
        Assert.Equal((byte)MessageType.Encrypt, frame[0]);
        int len = System.Buffers.Binary.BinaryPrimitives.ReadInt32BigEndian(frame.AsSpan(1));
        Assert.Equal(frame.Length - 5, len);
        Assert.Null(PayloadCrypto.TryDecrypt([Key00To0F], frame.AsSpan(5), [])); // AAD matters
        var plain = PayloadCrypto.TryDecrypt([new byte[16], Key00To0F], frame.AsSpan(5), frame.AsSpan(0, 5));
        Assert.NotNull(plain);
        Assert.Equal((byte)MessageType.Compress, plain[0]);
        var inner = MessageCodec.Decompress(plain.AsSpan(1));
        Assert.Equal((byte)MessageType.PushPull, inner[0]);
    }

    [Theory]
    [InlineData(16)]
    [InlineData(24)]
    [InlineData(32)]
    public void Encrypt_RoundTripsForEveryKeySize(int keySize)
    {
        var key = Enumerable.Range(0, keySize).Select(i => (byte)i).ToArray();
        var msg = Bytes(PlainFrame20);
        var aad = new byte[] { 10, 0, 0, 0, 1 };
        var enc = PayloadCrypto.Encrypt(key, msg, aad);
        Assert.Equal(msg.Length + 29, enc.Length);
        Assert.Equal(1, enc[0]);
        Assert.Equal(msg, PayloadCrypto.TryDecrypt([key], enc, aad));
        Assert.Null(PayloadCrypto.TryDecrypt([key], enc, []));
    }

    [Fact]
    public void Keyring_ParsesBase64AsSerfAndRejectsBadSizes()
    {
        var ring = Keyring.FromBase64("AAECAwQFBgcICQoLDA0ODw==");
        Assert.Equal(Key00To0F, ring.PrimaryKey.ToArray());
        Assert.Throws<ArgumentException>(() => Keyring.FromBase64("AAECAw=="));
        Assert.Throws<ArgumentException>(() => Keyring.FromBase64("not base64!"));
        ring.AddKey(new byte[32]);
        Assert.Equal(2, ring.Keys.Count);
        ring.UseKey(new byte[32]);
        Assert.Equal(new byte[32], ring.PrimaryKey.ToArray());
        Assert.Throws<InvalidOperationException>(() => ring.RemoveKey(new byte[32]));
        ring.RemoveKey(Key00To0F);
        Assert.Single(ring.Keys);
    }

    [Fact]
    public void Lzw_RoundTripsLargeAndRepetitiveInput_AcrossDictionaryResets()
    {
        var rnd = new Random(42);
        foreach (int size in new[] { 0, 1, 2, 255, 4096, 70_000 })
        {
            var data = new byte[size];
            // Mixed entropy: random bytes from a small alphabet exercise code growth and the 4095 reset.
            for (int i = 0; i < size; i++) data[i] = (byte)(i % 3 == 0 ? rnd.Next(256) : rnd.Next(4));
            var c = Lzw.Compress(data);
            Assert.Equal(data, Lzw.Decompress(c));
        }
        var aaa = Enumerable.Repeat((byte)'a', 10_000).ToArray();
        Assert.Equal(aaa, Lzw.Decompress(Lzw.Compress(aaa)));
    }

    [Fact]
    public void Lzw_RejectsGarbageAndBombs()
    {
        Assert.Throws<InvalidDataException>(() => Lzw.Decompress([]));
        Assert.Throws<InvalidDataException>(() => Lzw.Decompress([0xff, 0xff, 0xff, 0xff]));
        var big = Lzw.Compress(new byte[100_000]);
        Assert.Throws<InvalidDataException>(() => Lzw.Decompress(big, maxOutput: 10_000));
    }

    [Fact]
    public void MsgPack_AcceptsNewSpecForms_AndSkipsUnknownKeys()
    {
        // {"SeqNo": uint32 9, "Extra": [1, {"a": 1.5}], "Node": str8 "n1"}
        var bytes = Convert.FromHexString("83" + "a55365714e6f" + "ce00000009" + "a54578747261" + "9201" + "81a161cb3ff8000000000000" + "a44e6f6465" + "d9026e31");
        var p = Read(bytes, PingMessage.Read);
        Assert.Equal(9u, p.SeqNo);
        Assert.Equal("n1", p.Node);
    }

    [Theory]
    [InlineData("85a44e6f6465")]              // map ends early
    [InlineData("81a44e6f6465db7fffffff")]    // huge raw length
    [InlineData("df7fffffff")]                // huge map count
    [InlineData("81a55365714e6fcf0000000100000000")] // SeqNo does not fit uint32
    [InlineData("81a55365714e6fc1")]          // reserved byte
    public void MsgPack_RejectsMalformedInputWithoutAllocatingOrHanging(string hex)
    {
        Assert.Throws<MsgPackException>(() => Read(Convert.FromHexString(hex), PingMessage.Read));
    }

    [Fact]
    public void MeasureValue_FindsValueBoundariesInPartialBuffers()
    {
        byte[] frame = Bytes(PlainFrame20)[1..];
        Assert.Equal(frame.Length, MsgPackReader.MeasureValue(frame));
        for (int i = 0; i < frame.Length; i++)
            Assert.Equal(-1, MsgPackReader.MeasureValue(frame.AsSpan(0, i)));
    }
}
