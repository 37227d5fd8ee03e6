using UserOverlay.Cluster.Transport;

namespace UserOverlay.Cluster.Tests.Transport;

/// <summary>How a manager's address ("HOST[:PORT]") becomes the cluster port's URI, and what is refused.</summary>
public sealed class ManagerAddressTests
{
    [Theory]
    [InlineData("192.0.2.1", "https://192.0.2.1:2377/")]
    [InlineData("192.0.2.1:4000", "https://192.0.2.1:4000/")]
    [InlineData("::1", "https://[::1]:2377/")]
    [InlineData("[::1]", "https://[::1]:2377/")]
    [InlineData("[2001:db8::1]:2378", "https://[2001:db8::1]:2378/")]
    [InlineData("manager-1", "https://manager-1:2377/")]
    [InlineData("manager-1.example:2377", "https://manager-1.example:2377/")]
    public void Addresses_become_uris_with_the_default_port(string address, string expected) =>
        Assert.Equal(expected, ClusterClient.ManagerUri(address).ToString());

    [Theory]
    [InlineData("", "empty")]
    [InlineData("192.0.2.1:0", "port 0")]
    [InlineData("host:99999", "no valid port")]
    [InlineData("host:", "no valid port")]
    [InlineData("ho st", "is not HOST[:PORT]")]
    [InlineData("a/b:1", "is not HOST[:PORT]")]
    public void Malformed_addresses_are_refused(string address, string expected)
    {
        var e = Assert.Throws<ClusterClientException>(() => ClusterClient.ManagerUri(address));
        Assert.Equal("bad_argument", e.Code);
        Assert.Contains(expected, e.Message, StringComparison.Ordinal);
    }
}
