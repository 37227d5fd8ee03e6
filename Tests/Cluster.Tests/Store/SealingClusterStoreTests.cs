using System.Text;
using UserOverlay.Cluster.Manager;
using UserOverlay.Cluster.Replication;
using UserOverlay.Cluster.Store;
using UserOverlay.Cluster.Store.Etcd;

namespace UserOverlay.Cluster.Tests.Store;

/// <summary>
/// <see cref="SealingClusterStore"/> over the embedded store: secret keys (the cluster record, key rings) are kept
/// sealed beneath and handed out opened by every read path (get, range, transaction responses, watches); other keys
/// pass unchanged; another cluster's seal key, a plaintext or an altered value is a named refusal; a compare on a
/// sealed value is refused.
/// </summary>
public sealed class SealingClusterStoreTests
{
    private static byte[] V(string s) => Encoding.UTF8.GetBytes(s);

    private static async Task<(ReplicatedClusterStore Inner, SealingClusterStore Sealed, SealedValues Seal)> StartAsync()
    {
        var inner = new ReplicatedClusterStore(InMemoryLogGroup.Create(1).Members[0]);
        await inner.StartAsync();
        var seal = new SealedValues(SealedValues.NewKey());
        return (inner, new SealingClusterStore(inner, seal), seal);
    }

    [Fact]
    public async Task Secrets_are_sealed_beneath_and_opened_on_every_read_path_other_keys_pass_unchanged()
    {
        var (inner, store, seal) = await StartAsync();
        await using var _ = store;
        using var __ = seal;
        var watch = store.WatchAsync("", 0, TestContext.Current.CancellationToken).GetAsyncEnumerator();
        var moving = watch.MoveNextAsync();
        var put = await store.TxnAsync(new TxnRequest([], [Op.Put(ClusterKeys.Info, V("root key")), Op.Put(ClusterKeys.KeyRing("ipsec"), V("ring")), Op.Put("nodes/a", V("plain"))]));
        Assert.True(SealedValues.IsSealed((await inner.GetAsync(ClusterKeys.Info)).Kvs[0].Value));
        Assert.True(SealedValues.IsSealed((await inner.GetAsync(ClusterKeys.KeyRing("ipsec"))).Kvs[0].Value));
        Assert.Equal("plain", Encoding.UTF8.GetString((await inner.GetAsync("nodes/a")).Kvs[0].Value));
        Assert.DoesNotContain("root key", Encoding.UTF8.GetString((await inner.GetAsync(ClusterKeys.Info)).Kvs[0].Value));

        Assert.Equal("root key", Encoding.UTF8.GetString((await store.GetAsync(ClusterKeys.Info)).Kvs[0].Value));
        Assert.Equal(["root key", "ring", "plain"], (await store.RangeAsync("")).Kvs.OrderBy(k => k.Key == "nodes/a").ThenBy(k => k.Key).Select(k => Encoding.UTF8.GetString(k.Value)));
        var read = await store.TxnAsync(new TxnRequest([Compare.ModifiedAt(ClusterKeys.Info, put.Revision)], [Op.Get(ClusterKeys.Info), Op.Put(ClusterKeys.Info, V("next"))]));
        Assert.True(read.Succeeded);
        Assert.Equal("root key", Encoding.UTF8.GetString(read.Responses[0].Kvs[0].Value));
        Assert.True(await moving);
        Assert.Equal("root key", Encoding.UTF8.GetString(watch.Current.Kv.Value));
        await watch.DisposeAsync();

        var refused = await Assert.ThrowsAsync<StoreException>(async () => await store.TxnAsync(new TxnRequest(
            [new Compare(ClusterKeys.Info, CompareTarget.Value, CompareResult.Equal, Value: V("next"))], [Op.Delete(ClusterKeys.Info)])));
        Assert.Equal(StoreErrorCode.InvalidArgument, refused.Code);
        Assert.Contains(ClusterKeys.Info, refused.Message);
    }

    [Fact]
    public async Task Another_cluster_s_seal_key_a_plaintext_or_a_moved_value_is_refused_by_name()
    {
        var (inner, store, seal) = await StartAsync();
        await using var _ = store;
        using var __ = seal;
        await store.TxnAsync(new TxnRequest([], [Op.Put(ClusterKeys.Info, V("secret"))]));
        using var other = new SealedValues(SealedValues.NewKey());
        var wrong = new SealingClusterStore(inner, other);
        var e = await Assert.ThrowsAsync<StoreException>(async () => await wrong.GetAsync(ClusterKeys.Info));
        Assert.Equal(StoreErrorCode.SealKey, e.Code);
        Assert.Contains("another key", e.Message);

        // A value sealed for the cluster record, copied under a key ring's name, does not open there.
        var sealedInfo = (await inner.GetAsync(ClusterKeys.Info)).Kvs[0].Value;
        await inner.TxnAsync(new TxnRequest([], [Op.Put(ClusterKeys.KeyRing("ipsec"), sealedInfo), Op.Put(ClusterKeys.KeyRing("gossip"), V("plaintext"))]));
        foreach (string key in new[] { ClusterKeys.KeyRing("ipsec"), ClusterKeys.KeyRing("gossip") })
        {
            var moved = await Assert.ThrowsAsync<StoreException>(async () => await store.GetAsync(key));
            Assert.Equal(StoreErrorCode.SealKey, moved.Code);
            Assert.Contains(key, moved.Message);
        }
    }
}
