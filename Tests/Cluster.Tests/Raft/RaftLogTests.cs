using System.Net;
using System.Net.Security;
using System.Net.Sockets;
using System.Text;
using UserOverlay.Cluster.Replication.Raft;
using UserOverlay.Cluster.Store;
using static UserOverlay.Cluster.Tests.Raft.TestRaftCluster;

namespace UserOverlay.Cluster.Tests.Raft;

/// <summary>
/// <see cref="RaftLog"/> for real: members on 127.0.0.1 with free ports, DotNext's TCP transport under mutual TLS with a
/// throwaway CA, write-ahead logs and snapshots in temporary directories.
/// </summary>
public sealed class RaftLogTests
{
    private static readonly TimeSpan Settle = TimeSpan.FromSeconds(8);

    private static byte[] Cmd(string text) => Encoding.UTF8.GetBytes(text);

    private static async Task WaitSameAsync(IEnumerable<TestMember> members, int count)
    {
        var list = members.ToList();
        await WaitUntilAsync(() => list.All(m => m.Machine.Count == count), Settle,
            $"{count} entries on every member (have {string.Join(", ", list.Select(m => $"{m.Id}={m.Machine.Count}"))})");
        var reference = list[0].Machine.Read();
        foreach (TestMember member in list)
        {
            var state = member.Machine.Read();
            Assert.Equal(reference.Items, state.Items);
            Assert.Equal(reference.Checksum, state.Checksum);
            Assert.Equal(0, member.Machine.OrderViolations);
        }
    }

    [Fact]
    public async Task OneMember_ElectsItself_AndApplies()
    {
        await using var cluster = new TestRaftCluster();
        TestMember m1 = cluster.Create("m1");
        var changes = new List<bool>();
        m1.Log.LeadershipChanged += value => { lock (changes) changes.Add(value); };
        await m1.Log.BootstrapAsync(m1.Machine);
        m1.Running = true;

        Assert.True(m1.Log.IsLeader);
        Assert.Equal(m1.Address.ToString(), m1.Log.Leader);
        Assert.Equal("m1", m1.Log.LeaderId);
        Assert.StartsWith("raft:", m1.Log.Location);
        lock (changes)
            Assert.Equal([true], changes);

        await m1.Log.ProposeAsync(Cmd("a"));
        Assert.Equal(1, m1.Machine.Count); // applied locally before ProposeAsync returned
        await m1.Log.ProposeAsync(Cmd("b"));
        await m1.Log.ProposeAsync(Cmd("c"));
        Assert.Equal(["a", "b", "c"], m1.Machine.Read().Items);

        RaftMemberInfo self = Assert.Single(m1.Log.Members);
        Assert.Equal(new RaftMemberInfo("m1", m1.Address.ToString(), true, true, true), self);

        if (!OperatingSystem.IsWindows())
            Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute, File.GetUnixFileMode(m1.Options.DataDirectory));

        await m1.StopAsync();
        lock (changes)
            Assert.Equal([true, false], changes);
        // The ports are free again.
        using var probe = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        probe.Bind(m1.Address);
    }

    [Fact]
    public async Task ThreeMembers_OneLeader_ProposalsOnLeaderAndFollowers_AppliedInTheSameOrderEverywhere()
    {
        await using var cluster = new TestRaftCluster();
        List<TestMember> members = await cluster.StartThreeAsync();
        TestMember leader = await WaitForLeaderAsync(members, Settle);
        Assert.Equal("m1", leader.Id);
        await WaitUntilAsync(() => members.All(m => m.Log.Members.Count == 3 && m.Log.LeaderId == "m1"), Settle, "every member sees three members and m1 leading");
        Assert.Equal(["m1", "m2", "m3"], members[2].Log.Members.Select(static m => m.Id));

        // Interleaved proposals from every member, some concurrent.
        for (int round = 0; round < 5; round++)
            foreach (TestMember member in members)
                await member.Log.ProposeAsync(Cmd($"{member.Id}-{round}"));
        // A follower's proposal is applied on that follower before ProposeAsync returns.
        await members[1].Log.ProposeAsync(Cmd("m2-read-own-write"));
        Assert.Equal("m2-read-own-write", members[1].Machine.Read().Items[^1]);
        await Task.WhenAll(members.SelectMany(m => Enumerable.Range(0, 4).Select(i => m.Log.ProposeAsync(Cmd($"{m.Id}-c{i}")).AsTask())));

        await WaitSameAsync(members, 5 * 3 + 1 + 3 * 4);

        // A read barrier on a follower: everything the leader committed before it is applied here after it.
        await Task.WhenAll(Enumerable.Range(0, 20).Select(i => leader.Log.ProposeAsync(Cmd($"burst-{i}")).AsTask()));
        await members[2].Log.ReadBarrierAsync();
        Assert.Equal(5 * 3 + 1 + 3 * 4 + 20, members[2].Machine.Count);
        await WaitSameAsync(members, 5 * 3 + 1 + 3 * 4 + 20);
        var items = members[0].Machine.Read().Items;
        Assert.Equal(items.Count, items.Distinct().Count());
        Assert.Single(members, static m => m.Log.IsLeader);
    }

    [Fact]
    public async Task LeaderKilled_NewLeaderTakesOver_AndTheRestartedMemberCatchesUp()
    {
        await using var cluster = new TestRaftCluster();
        List<TestMember> members = await cluster.StartThreeAsync();
        TestMember first = await WaitForLeaderAsync(members, Settle);
        for (int i = 0; i < 5; i++)
            await members[i % 3].Log.ProposeAsync(Cmd($"before-{i}"));
        await WaitSameAsync(members, 5);

        await first.StopAsync();
        List<TestMember> rest = [.. members.Where(m => m != first)];
        TestMember second = await WaitForLeaderAsync(rest, TimeSpan.FromSeconds(5));
        Assert.NotEqual(first, second);
        TestMember follower = rest.Single(m => m != second);
        await second.Log.ProposeAsync(Cmd("after-leader"));
        await follower.Log.ProposeAsync(Cmd("after-follower"));
        await WaitSameAsync(rest, 7);
        await WaitUntilAsync(() => second.Log.Members.Any(m => m.Id == first.Id && m.Reachable == false), Settle, "the new leader seeing the old one unreachable");

        // The old leader comes back with its directory: its machine is rebuilt from the log, then it catches up.
        await first.RestartAsync();
        await WaitSameAsync(members, 7);
        Assert.False(first.Log.IsLeader);
        await first.Log.ProposeAsync(Cmd("from-the-restarted"));
        await WaitSameAsync(members, 8);
        await WaitUntilAsync(() => first.Log.LeaderId is { } id && rest.Any(m => m.Id == id && m.Log.IsLeader), Settle, "the restarted member following the new leader");
    }

    [Fact]
    public async Task AFourthMemberJoinsARunningCluster_AndOneIsRemoved()
    {
        await using var cluster = new TestRaftCluster();
        List<TestMember> members = await cluster.StartThreeAsync();
        await WaitForLeaderAsync(members, Settle);
        for (int i = 0; i < 4; i++)
            await members[0].Log.ProposeAsync(Cmd($"early-{i}"));

        // Added through a follower: the request is forwarded to the leader.
        TestMember m4 = await cluster.StartAsync("m4");
        Assert.Empty(m4.Log.Members); // not a member until added
        await members[1].Log.AddMemberAsync("m4", m4.Address);
        members.Add(m4);
        await WaitSameAsync(members, 4);
        await m4.Log.ProposeAsync(Cmd("from-m4"));
        await WaitSameAsync(members, 5);
        await WaitUntilAsync(() => members.All(m => m.Log.Members.Count == 4), Settle, "four members everywhere");
        Assert.Equal(["m1", "m2", "m3", "m4"], m4.Log.Members.Select(static m => m.Id));

        // Adding it again is harmless; the same id at another address is refused.
        await members[0].Log.AddMemberAsync("m4", m4.Address);
        await Assert.ThrowsAsync<InvalidOperationException>(() => members[0].Log.AddMemberAsync("m4", new IPEndPoint(IPAddress.Loopback, FreePort())));

        // m3 leaves (removed from m4, a follower); it is stopped afterwards, and the three left go on.
        TestMember m3 = members[2];
        await m4.Log.RemoveMemberAsync("m3");
        await m3.StopAsync();
        members.Remove(m3);
        await WaitUntilAsync(() => members.All(m => m.Log.Members.Count == 3), Settle, "three members everywhere after the removal");
        Assert.Equal(["m1", "m2", "m4"], members[1].Log.Members.Select(static m => m.Id));
        await members[1].Log.ProposeAsync(Cmd("after-removal"));
        await WaitSameAsync(members, 6);
        await Assert.ThrowsAsync<InvalidOperationException>(() => members[0].Log.RemoveMemberAsync("no-such-member"));
    }

    [Fact]
    public async Task TheLeaderRemovedFromTheCluster_TheOthersElectANewOne()
    {
        await using var cluster = new TestRaftCluster();
        List<TestMember> members = await cluster.StartThreeAsync();
        TestMember m1 = await WaitForLeaderAsync(members, Settle);
        await members[1].Log.ProposeAsync(Cmd("before"));

        await members[1].Log.RemoveMemberAsync(m1.Id); // forwarded to m1, the leader, which removes itself
        List<TestMember> rest = [.. members.Where(m => m != m1)];
        TestMember next = await WaitForLeaderAsync(rest, Settle);
        await WaitUntilAsync(() => rest.All(m => m.Log.Members.Count == 2 && m.Log.Members.All(i => i.Id != m1.Id)), Settle, "two members left everywhere");
        await next.Log.ProposeAsync(Cmd("after"));
        await WaitSameAsync(rest, 2);
        await m1.StopAsync();
        await rest.Single(m => m != next).Log.ProposeAsync(Cmd("after-stop"));
        await WaitSameAsync(rest, 3);
    }

    [Fact]
    public async Task AMemberWithACertificateOfAnotherCa_CannotJoinOrTalk()
    {
        await using var cluster = new TestRaftCluster();
        TestMember m1 = await cluster.BootstrapAsync("m1", o => o with { ProposeTimeout = TimeSpan.FromSeconds(2) });
        await m1.Log.ProposeAsync(Cmd("ours"));
        using var stranger = new TestCa("another-ca");
        TestMember intruder = await cluster.StartAsync("intruder", stranger, o => o with { ProposeTimeout = TimeSpan.FromSeconds(2) });

        // The leader cannot add it: every connection between them fails the TLS handshake.
        StoreException notAdded = await Assert.ThrowsAsync<StoreException>(() => m1.Log.AddMemberAsync("intruder", intruder.Address));
        Assert.Equal(StoreErrorCode.Unavailable, notAdded.Code);
        Assert.Single(m1.Log.Members);
        Assert.Equal(0, intruder.Machine.Count);
        StoreException refused = await Assert.ThrowsAsync<StoreException>(() => intruder.Log.ProposeAsync(Cmd("theirs")).AsTask());
        Assert.Equal(StoreErrorCode.Unavailable, refused.Code);

        // Both of m1's ports refuse a client with the stranger's certificate, and one with none; they talk to one of ours.
        using var strangerCertificate = stranger.Issue("intruder-client");
        using var good = cluster.Ca.Issue("good-client");
        var noCertificate = new SslClientAuthenticationOptions
        {
            TargetHost = "useroverlay-raft",
            RemoteCertificateValidationCallback = (_, _, _, _) => true,
        };
        foreach ((IPEndPoint port, bool forwarding) in new[] { (m1.Address, false), (m1.Options.ForwardListenEndPoint!, true) })
        {
            Assert.False(await TalksAsync(port, stranger.ClientOptions(strangerCertificate), forwarding), $"{port} talked to a stranger's certificate");
            Assert.False(await TalksAsync(port, noCertificate, forwarding), $"{port} talked to a client without a certificate");
            Assert.True(await TalksAsync(port, cluster.Ca.ClientOptions(good), forwarding), $"{port} refused a certificate of the cluster's CA");
        }
        Assert.True(m1.Log.ForwardHandshakeFailures >= 2, $"refused handshakes counted: {m1.Log.ForwardHandshakeFailures}");
        await m1.Log.ProposeAsync(Cmd("still-ours"));
        Assert.Equal(["ours", "still-ours"], m1.Machine.Read().Items);
    }

    /// <summary>
    /// Whether <paramref name="target"/> accepts a TLS client with <paramref name="options"/>: on the forwarding port it
    /// must answer a request (a proposal that is not a command: the leader rejects it with a reply); on the Raft port
    /// it must keep the connection open (a refused client certificate closes it at once: with TLS 1.3 the client's
    /// handshake may complete before the server has checked the client's certificate, so the refusal shows on a read).
    /// </summary>
    private static async Task<bool> TalksAsync(IPEndPoint target, SslClientAuthenticationOptions options, bool forwarding)
    {
        using var client = new TcpClient();
        await client.ConnectAsync(target);
        await using var ssl = new SslStream(client.GetStream());
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(forwarding ? 5 : 1));
        try
        {
            await ssl.AuthenticateAsClientAsync(options, timeout.Token);
            if (forwarding)
            {
                byte[] request = [0, 0, 0, 10, 1, 2, 0, 0, 0, 0, 0, 0, 0, 0]; // Propose, carrying a member-record header
                await ssl.WriteAsync(request, timeout.Token);
                await ssl.FlushAsync(timeout.Token);
            }
            var buffer = new byte[64];
            int read = await ssl.ReadAsync(buffer, timeout.Token);
            return forwarding && read >= 5 && buffer[4] == 3; // status Rejected
        }
        catch (OperationCanceledException) when (!forwarding)
        {
            return true; // the Raft port kept the connection open, waiting for a request
        }
        catch (Exception e) when (e is System.Security.Authentication.AuthenticationException or IOException or SocketException or OperationCanceledException)
        {
            return false;
        }
    }

    [Fact]
    public async Task TheForwardingChannel_DropsHostileFrames_AndCountsThem()
    {
        await using var cluster = new TestRaftCluster();
        TestMember m1 = await cluster.BootstrapAsync("m1");
        using var certificate = cluster.Ca.Issue("peer");
        IPEndPoint port = m1.Options.ForwardListenEndPoint!;

        // A length over the limit, and a frame of an unknown type: each connection is dropped.
        foreach (byte[] hostile in new[] { new byte[] { 0x7f, 0xff, 0xff, 0xff }, [0, 0, 0, 1, 99] })
        {
            (TcpClient tcp, SslStream ssl) = await OpenAsync(port, cluster.Ca.ClientOptions(certificate));
            using (tcp)
            await using (ssl)
            {
                await ssl.WriteAsync(hostile);
                await ssl.FlushAsync();
                Assert.Equal(0, await ReadOrZeroAsync(ssl));
            }
        }
        Assert.Equal(2, m1.Log.ForwardMalformedFrames);

        // A well-formed request carrying a command too short to hold one is refused with an answer; nothing applied.
        (TcpClient tcp2, SslStream ssl2) = await OpenAsync(port, cluster.Ca.ClientOptions(certificate));
        using (tcp2)
        await using (ssl2)
        {
            await ssl2.WriteAsync(new byte[] { 0, 0, 0, 3, 1, 1, 0 });
            await ssl2.FlushAsync();
            var reply = new byte[5];
            await ssl2.ReadExactlyAsync(reply);
            Assert.Equal(3, reply[4]); // Rejected
        }
        // A client that connects and goes away mid-frame harms nothing either.
        (TcpClient tcp3, SslStream ssl3) = await OpenAsync(port, cluster.Ca.ClientOptions(certificate));
        await ssl3.WriteAsync(new byte[] { 0, 0, 1, 0, 1, 2, 3 });
        await ssl3.DisposeAsync();
        tcp3.Dispose();

        Assert.Equal(0, m1.Machine.Count);
        await m1.Log.ProposeAsync(Cmd("fine"));
        Assert.Equal(["fine"], m1.Machine.Read().Items);
    }

    private static async Task<(TcpClient, SslStream)> OpenAsync(IPEndPoint target, SslClientAuthenticationOptions options)
    {
        var tcp = new TcpClient();
        await tcp.ConnectAsync(target);
        var ssl = new SslStream(tcp.GetStream());
        await ssl.AuthenticateAsClientAsync(options);
        return (tcp, ssl);
    }

    private static async Task<int> ReadOrZeroAsync(SslStream ssl)
    {
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(5));
        try
        {
            return await ssl.ReadAsync(new byte[16], timeout.Token);
        }
        catch (IOException)
        {
            return 0; // reset by the server
        }
    }

    [Fact]
    public async Task ASnapshotIsTaken_AndANewMemberCatchesUpFromIt()
    {
        await using var cluster = new TestRaftCluster();
        static RaftLogOptions Small(RaftLogOptions o) => o with { SnapshotEvery = 8 };
        TestMember m1 = await cluster.BootstrapAsync("m1", Small);
        for (int i = 0; i < 30; i++)
            await m1.Log.ProposeAsync(Cmd($"entry-{i}"));
        await WaitUntilAsync(() => m1.Log.SnapshotsTaken >= 2, Settle, "m1 taking snapshots");
        Assert.Equal(30, m1.Machine.Count);

        TestMember m2 = await cluster.StartAsync("m2", tweak: Small);
        await m1.Log.AddMemberAsync("m2", m2.Address);
        await WaitSameAsync([m1, m2], 30);
        Assert.True(m2.Log.SnapshotsRestored >= 1, "m2 caught up from m1's snapshot");

        // Restarted, m1 rebuilds from its snapshot and the entries after it, exactly as before.
        var before = m1.Machine.Read();
        await m1.RestartAsync();
        Assert.True(m1.Log.SnapshotsRestored >= 1);
        await WaitSameAsync([m1, m2], 30);
        Assert.Equal(before.Checksum, m1.Machine.Read().Checksum);
        await WaitForLeaderAsync([m1, m2], Settle);
        await m2.Log.ProposeAsync(Cmd("after-restart"));
        await WaitSameAsync([m1, m2], 31);
    }

    [Fact]
    public async Task AStartThatFails_LeavesNoPortOpen_AndTheDirectoryReusable()
    {
        await using var cluster = new TestRaftCluster();
        TestMember m1 = cluster.Create("m1");
        using (var squatter = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp))
        {
            squatter.Bind(m1.Address);
            squatter.Listen();
            await Assert.ThrowsAnyAsync<SocketException>(() => m1.Log.BootstrapAsync(m1.Machine).AsTask());
        }
        // The forwarding port it had opened is closed again.
        using (var probe = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp))
            probe.Bind(m1.Options.ForwardListenEndPoint!);
        await m1.Log.DisposeAsync();

        // The same options and directory work once the port is free.
        m1.Log = new RaftLog(m1.Options);
        await m1.Log.BootstrapAsync(m1.Machine);
        m1.Running = true;
        await m1.Log.ProposeAsync(Cmd("x"));
        Assert.Equal(["x"], m1.Machine.Read().Items);
    }

    [Fact]
    public void BadOptions_NameTheField()
    {
        using var ca = new TestCa("options-ca");
        using var certificate = ca.Issue("n");
        var good = new RaftLogOptions
        {
            MemberId = "n",
            ListenEndPoint = new IPEndPoint(IPAddress.Loopback, RaftLogOptions.DefaultPort),
            DataDirectory = "/nonexistent/raft",
            ServerTls = ca.ServerOptions(certificate),
            ClientTls = ca.ClientOptions(certificate),
        };
        good.Validate();
        Assert.Equal(new IPEndPoint(IPAddress.Loopback, RaftLogOptions.DefaultForwardPort), good.ForwardListen);
        Assert.Contains("MemberId", Assert.Throws<ArgumentException>(() => new RaftLog(good with { MemberId = "" })).Message);
        Assert.Contains("AdvertisedEndPoint", Assert.Throws<ArgumentException>(() => new RaftLog(good with { ListenEndPoint = new IPEndPoint(IPAddress.Any, 2378) })).Message);
        Assert.Contains("UpperElectionTimeout", Assert.Throws<ArgumentException>(() => new RaftLog(good with { UpperElectionTimeout = TimeSpan.FromMilliseconds(100) })).Message);
        Assert.Contains("SnapshotEvery", Assert.Throws<ArgumentException>(() => new RaftLog(good with { SnapshotEvery = 1 })).Message);
        Assert.Contains("ProposeTimeout", Assert.Throws<ArgumentException>(() => new RaftLog(good with { ProposeTimeout = TimeSpan.Zero })).Message);
        Assert.False(Directory.Exists("/nonexistent/raft"));
    }
}
