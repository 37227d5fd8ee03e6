using System.Text;
using UserOverlay.Cluster.Store;
using UserOverlay.Cluster.Store.Etcd;

namespace UserOverlay.Cluster.Tests.Store;

/// <summary><see cref="SealedValues"/>: round trips, the header, and every way a sealed value can fail to open.</summary>
public sealed class EtcdSealedValuesTests
{
    private static readonly byte[] Secret = Encoding.UTF8.GetBytes("-----BEGIN PRIVATE KEY----- the CA's key -----END PRIVATE KEY-----");

    [Fact]
    public void A_sealed_value_opens_with_its_key_and_context_and_hides_the_plaintext()
    {
        using var sealer = new SealedValues(SealedValues.NewKey());
        byte[] sealedValue = sealer.Seal(Secret, "ca/key");
        Assert.Equal(Secret.Length + SealedValues.Overhead, sealedValue.Length);
        Assert.True(SealedValues.IsSealed(sealedValue));
        Assert.Equal("UOSV"u8.ToArray(), sealedValue[..4]);
        Assert.Equal(SealedValues.Version, sealedValue[4]);
        Assert.Equal(-1, sealedValue.AsSpan().IndexOf("PRIVATE KEY"u8));
        Assert.Equal(Secret, sealer.Open(sealedValue, "ca/key"));
        // Random nonces: the same plaintext seals differently each time.
        Assert.NotEqual(sealedValue, sealer.Seal(Secret, "ca/key"));
        Assert.Empty(sealer.Open(sealer.Seal([], "empty"), "empty"));
        Assert.False(SealedValues.IsSealed(Secret));
    }

    [Fact]
    public void Another_key_another_context_a_changed_byte_or_version_do_not_open_and_say_why()
    {
        byte[] key = SealedValues.NewKey();
        using var sealer = new SealedValues(key);
        using var other = new SealedValues(SealedValues.NewKey());
        byte[] sealedValue = sealer.Seal(Secret, "networks/blue/keys");

        Assert.Contains("another key", Assert.Throws<InvalidDataException>(() => other.Open(sealedValue, "networks/blue/keys")).Message);
        Assert.Contains("altered", Assert.Throws<InvalidDataException>(() => sealer.Open(sealedValue, "networks/red/keys")).Message);
        for (int i = 13; i < sealedValue.Length; i += 7) // every part after the key id: nonce, ciphertext, tag
        {
            byte[] changed = (byte[])sealedValue.Clone();
            changed[i] ^= 0x01;
            Assert.Throws<InvalidDataException>(() => sealer.Open(changed, "networks/blue/keys"));
        }
        byte[] future = (byte[])sealedValue.Clone();
        future[4] = 2;
        Assert.Contains("version 2", Assert.Throws<InvalidDataException>(() => sealer.Open(future, "networks/blue/keys")).Message);
        Assert.Contains("not a sealed value", Assert.Throws<InvalidDataException>(() => sealer.Open(sealedValue[..20], "networks/blue/keys")).Message);
        Assert.Contains("not a sealed value", Assert.Throws<InvalidDataException>(() => sealer.Open(Secret, "networks/blue/keys")).Message);
        // The same key in a new instance opens it (the key, not the instance, is what counts).
        using var again = new SealedValues(key);
        Assert.Equal(Secret, again.Open(sealedValue, "networks/blue/keys"));
    }

    [Fact]
    public void A_key_of_the_wrong_size_is_refused_naming_it_and_a_disposed_sealer_refuses()
    {
        Assert.Contains("key:", Assert.Throws<ArgumentException>(() => new SealedValues(new byte[16])).Message);
        Assert.Contains("key:", Assert.Throws<ArgumentException>(() => new SealedValues(new byte[33])).Message);
        var sealer = new SealedValues(SealedValues.NewKey());
        sealer.Dispose();
        Assert.Throws<ObjectDisposedException>(() => sealer.Seal(Secret, "k"));
        sealer.Dispose();
    }

    [Fact]
    public async Task Sealed_values_round_trip_through_a_real_etcd_as_opaque_bytes()
    {
        await using var etcd = await EtcdProcess.StartAsync();
        await using var store = await EtcdClusterStore.ConnectAsync(new EtcdStoreOptions { Endpoints = [etcd.ClientUrl] });
        using var sealer = new SealedValues(SealedValues.NewKey());
        await store.TxnAsync(new TxnRequest([], [Op.Put("ca/key", sealer.Seal(Secret, "ca/key"))]));
        byte[] stored = (await store.GetAsync("ca/key")).Kvs[0].Value;
        Assert.True(SealedValues.IsSealed(stored));
        Assert.Equal(-1, stored.AsSpan().IndexOf("PRIVATE KEY"u8));
        Assert.Equal(Secret, sealer.Open(stored, "ca/key"));
    }
}
