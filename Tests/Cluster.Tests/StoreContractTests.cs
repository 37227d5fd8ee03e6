using UserOverlay.Cluster.Store;

namespace UserOverlay.Cluster.Tests;

public class StoreContractTests
{
    [Fact]
    public void Compare_helpers_encode_etcd_conventions()
    {
        Assert.Equal(new Compare("k", CompareTarget.Version, CompareResult.Equal, 0), Compare.Missing("k"));
        Assert.Equal(CompareResult.Greater, Compare.Exists("k").Result);
        Assert.Equal(7, Compare.ModifiedAt("k", 7).Number);
    }
}
