using System.Text.Json;
using UserOverlay.Control.Networks;
using UserOverlay.Control.State;

namespace UserOverlay.Control.Tests;

/// <summary><c>network inspect</c>'s JSON has Docker's field names and shapes.</summary>
public class NetworkInspectJsonTests
{
    private static (NetworkManager Manager, EndpointRecord Endpoint) BlueWithOneEndpoint(bool aux)
    {
        var m = new NetworkManager(new InMemoryNetworkStore(), NoDataPlane.Instance);
        m.CreateNetwork(new NetworkCreateRequest
        {
            Name = "blue",
            Subnet = "198.18.0.0/24",
            Attachable = true,
            Encrypted = true,
            IpRange = aux ? "198.18.0.128/25" : null,
            AuxAddresses = aux ? new Dictionary<string, string> { ["router"] = "198.18.0.2" } : new Dictionary<string, string>(),
            Labels = new Dictionary<string, string> { ["team"] = "net" },
        });
        return (m, m.Attach(new EndpointAttachRequest { Network = "blue", Netns = "ns-a" }));
    }

    private static JsonElement Inspect(NetworkManager m)
    {
        string json = JsonSerializer.Serialize<IReadOnlyList<NetworkInspect>>([m.Inspect("blue")], DockerJson.Default.IReadOnlyListNetworkInspect);
        Assert.StartsWith("[\n    {\n        \"Name\": \"blue\"", json);   // Docker's four-space indent
        return Assert.Single(JsonDocument.Parse(json).RootElement.EnumerateArray().ToList());
    }

    [Fact]
    public void Has_dockers_top_level_fields_in_dockers_order()
    {
        var n = Inspect(BlueWithOneEndpoint(aux: false).Manager);
        Assert.Equal(["Name", "Id", "Created", "Scope", "Driver", "EnableIPv6", "IPAM", "Internal", "Attachable", "Ingress",
                      "ConfigFrom", "ConfigOnly", "Containers", "Options", "Labels"],
                     n.EnumerateObject().Select(p => p.Name));
        Assert.Equal(("overlay", "local", true), (n.GetProperty("Driver").GetString(), n.GetProperty("Scope").GetString(), n.GetProperty("Attachable").GetBoolean()));
        Assert.Matches(@"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{7}Z$", n.GetProperty("Created").GetString());
        Assert.Equal("", n.GetProperty("ConfigFrom").GetProperty("Network").GetString());
        Assert.Equal("net", n.GetProperty("Labels").GetProperty("team").GetString());
        var options = n.GetProperty("Options");
        Assert.Equal("4096", options.GetProperty("com.docker.network.driver.overlay.vxlanid_list").GetString());
        Assert.Equal("", options.GetProperty("encrypted").GetString());
    }

    [Fact]
    public void Ipam_config_leaves_out_empty_fields_and_names_the_others_as_docker_does()
    {
        var plain = Inspect(BlueWithOneEndpoint(aux: false).Manager).GetProperty("IPAM");
        Assert.Equal("default", plain.GetProperty("Driver").GetString());
        Assert.Equal(JsonValueKind.Null, plain.GetProperty("Options").ValueKind);
        var config = Assert.Single(plain.GetProperty("Config").EnumerateArray().ToList());
        Assert.Equal(["Subnet", "Gateway"], config.EnumerateObject().Select(p => p.Name));
        Assert.Equal(("198.18.0.0/24", "198.18.0.1"), (config.GetProperty("Subnet").GetString(), config.GetProperty("Gateway").GetString()));

        var full = Assert.Single(Inspect(BlueWithOneEndpoint(aux: true).Manager).GetProperty("IPAM").GetProperty("Config").EnumerateArray().ToList());
        Assert.Equal(["Subnet", "IPRange", "Gateway", "AuxiliaryAddresses"], full.EnumerateObject().Select(p => p.Name));
        Assert.Equal("198.18.0.2", full.GetProperty("AuxiliaryAddresses").GetProperty("router").GetString());
    }

    [Fact]
    public void Containers_maps_endpoint_ids_to_name_endpoint_id_mac_and_address_with_prefix()
    {
        var (m, ep) = BlueWithOneEndpoint(aux: false);
        var c = Inspect(m).GetProperty("Containers").GetProperty(ep.Id);
        Assert.Equal(["Name", "EndpointID", "MacAddress", "IPv4Address", "IPv6Address"], c.EnumerateObject().Select(p => p.Name));
        Assert.Equal(("ns-a", ep.Id, "02:00:c6:12:00:02", "198.18.0.2/24", ""),
            (c.GetProperty("Name").GetString(), c.GetProperty("EndpointID").GetString(), c.GetProperty("MacAddress").GetString(),
             c.GetProperty("IPv4Address").GetString(), c.GetProperty("IPv6Address").GetString()));
    }
}
