using UserOverlay.Cluster.Store;
using UserOverlay.Cluster.Store.Etcd;

namespace UserOverlay.Cluster.Tests.Store;

/// <summary>
/// The whole conformance suite against a real etcd (one fresh member per test, so revisions start at 1 as the
/// contract says), through <see cref="EtcdClusterStore"/> with a key prefix of its own. Hooks: a restart kills etcd
/// and starts it again on the same data directory; time really passes (etcd counts lease time on its own clock),
/// and the hook then waits until etcd has revoked every lease it reports as expired. etcd has no request ids, so
/// the repeated-request test is skipped.
/// </summary>
public sealed class EtcdStoreTests : StoreConformanceTests
{
    private readonly string _prefix = $"/useroverlay-test-{Guid.NewGuid():N}/";
    private EtcdProcess? _etcd;

    /// <summary>The store compacts to this many revisions itself (etcd's own compactor runs every few minutes).</summary>
    protected override int HistoryKept => 16;

    protected override async Task<IClusterStore> CreateAsync()
    {
        _etcd = await EtcdProcess.StartAsync();
        return await ConnectAsync();
    }

    private async Task<IClusterStore> ConnectAsync() => await EtcdClusterStore.ConnectAsync(new EtcdStoreOptions
    {
        Endpoints = [_etcd!.ClientUrl],
        KeyPrefix = _prefix,
        CompactionRetention = HistoryKept,
    });

    protected override Task<IClusterStore>? RestartAsync(IClusterStore store) => RestartCoreAsync(store);

    private async Task<IClusterStore> RestartCoreAsync(IClusterStore store)
    {
        await store.DisposeAsync();
        await _etcd!.RestartAsync();
        return await ConnectAsync();
    }

    protected override async Task<bool> PassTimeAsync(TimeSpan time)
    {
        await Task.Delay(time);
        // etcd revokes expired leases on its own (every 500 ms): wait until none it lists has run out.
        var until = DateTime.UtcNow + TimeSpan.FromSeconds(5);
        while ((await _etcd!.LeasesAsync()).Any(l => l.Ttl <= 0))
        {
            Assert.True(DateTime.UtcNow < until, "etcd did not revoke an expired lease within 5 s");
            await Task.Delay(50);
        }
        return true;
    }

    public override async ValueTask DisposeAsync()
    {
        try { await base.DisposeAsync(); }
        finally
        {
            if (_etcd is not null) await _etcd.DisposeAsync();
        }
    }

    [Fact]
    public void The_location_names_the_endpoint_and_the_prefix() =>
        Assert.Equal($"etcd:{_etcd!.ClientUrl.GetLeftPart(UriPartial.Authority)}{_prefix}", Store.Location);
}
