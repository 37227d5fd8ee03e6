namespace UserOverlay.Crypto.Tests;

public class SpiCollisionTests
{
    [Fact]
    public void A_shared_spi_is_detected_counted_and_both_sas_still_work()
    {
        using var pair = new Pair();
        OutboundSa real = pair.AtoB.CurrentOutbound!;
        // Another peer's SA that happens to derive the same SPI (forced here; by chance it is a 32-bit birthday event).
        var other = new EspSaParameters
        {
            Spi = real.Spi,
            Key = Enumerable.Repeat((byte)0xEE, 32).ToArray(),
            Salt = [9, 9, 9, 9],
            KeyId = Pair.KeyId,
            Source = Packets.HostC,
            Destination = Packets.HostB,
            Epoch = real.Epoch,
        };
        pair.B.AddPeer(Pair.KeyId, Packets.HostC);
        pair.B.InjectInbound(Pair.KeyId, Packets.HostC, 99, new InboundSa(other));

        Assert.Equal(1, pair.B.Counters.CurrentSpiCollisions);
        Assert.Equal(1, pair.B.Counters.SpiCollisionsDetected);
        SpiCollision c = Assert.Single(pair.B.SpiCollisions);
        Assert.Equal(real.Spi, c.Spi);
        Assert.Equal(2, c.Sas.Count);

        using var fromC = new OutboundSa(other);
        for (int i = 0; i < 20; i++)
        {
            byte[] payload = Packets.VxlanIcmp(4096, (ushort)i);
            byte[] b1 = Packets.InBuffer(payload);
            byte[] b2 = Packets.InBuffer(payload);
            Assert.Equal(EspSealStatus.Ok, pair.AtoB.Seal(b1, 64, payload.Length, 17, out int n1));
            Assert.Equal(EspSealStatus.Ok, fromC.Seal(b2, 64, payload.Length, 17, out int n2));
            byte[] replay = b1.AsSpan(48, n1).ToArray();
            Assert.Equal(EspOpenStatus.Ok, pair.B.Open(b1.AsSpan(48, n1), out int o1, out int l1, out _, out InboundSa? sa1));
            Assert.Equal(EspOpenStatus.Ok, pair.B.Open(b2.AsSpan(48, n2), out int o2, out int l2, out _, out InboundSa? sa2));
            Assert.Equal(Packets.HostA, sa1!.Source);
            Assert.Equal(Packets.HostC, sa2!.Source);
            Assert.Equal(Hex.Of(payload), Hex.Of(b1.AsSpan(48 + o1, l1)));
            Assert.Equal(Hex.Of(payload), Hex.Of(b2.AsSpan(48 + o2, l2)));
            // A replay through the shared SPI is still a replay.
            Assert.Equal(EspOpenStatus.Replayed, pair.B.Open(replay, out _, out _, out _, out _));
        }
        Assert.Equal(1, pair.B.Counters.SpiCollisionsDetected); // counted once, not per packet
    }
}
