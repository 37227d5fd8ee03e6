using UserOverlay.Membership;
using UserOverlay.Membership.Testing;

namespace UserOverlay.Samples.Embed;

/// <summary>UserOverlay.Membership on its own: two gossip members join and see each other
/// (docs/packages/UserOverlay.Membership.md shows the part between the example markers).</summary>
internal static class MembershipExample
{
    public static async Task<bool> RunAsync()
    {
        // <example>
        // In memory here; without Transport a member speaks memberlist's protocol on UDP+TCP (BindAddress, BindPort).
        var network = new InMemoryNetwork();
        await using var a = await Memberlist.CreateAsync(InMemoryNetwork.FastOptions("a") with { Transport = network.CreateTransport("a") });
        await using var b = await Memberlist.CreateAsync(InMemoryNetwork.FastOptions("b") with { Transport = network.CreateTransport("b") });
        await b.JoinAsync([network.AddressOf("a")]);

        var deadline = DateTime.UtcNow.AddSeconds(10);
        while (a.NumMembers < 2 && DateTime.UtcNow < deadline)
            await Task.Delay(50);
        IReadOnlyList<MemberInfo> members = a.Members; // a snapshot: live members, a included
        Console.WriteLine("membership: a sees " + string.Join(", ", members.Select(m => $"{m.Name} ({m.State})")));
        await b.LeaveAsync(TimeSpan.FromSeconds(2));
        // </example>
        return members.Any(m => m.Name == "b");
    }
}
