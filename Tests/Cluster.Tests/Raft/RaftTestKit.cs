using Microsoft.Extensions.Logging;
using System.Buffers.Binary;
using System.Net;
using System.Net.Security;
using System.Net.Sockets;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using UserOverlay.Cluster.Replication;
using UserOverlay.Cluster.Replication.Raft;

namespace UserOverlay.Cluster.Tests.Raft;

/// <summary>A throwaway certificate authority (ECDSA P-256) issuing node certificates for 127.0.0.1.</summary>
public sealed class TestCa : IDisposable
{
    private readonly ECDsa key;

    public TestCa(string name)
    {
        key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var request = new CertificateRequest($"CN={name}", key, HashAlgorithmName.SHA256);
        request.CertificateExtensions.Add(new X509BasicConstraintsExtension(true, false, 0, true));
        request.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.KeyCertSign | X509KeyUsageFlags.CrlSign, true));
        request.CertificateExtensions.Add(new X509SubjectKeyIdentifierExtension(request.PublicKey, false));
        Certificate = request.CreateSelfSigned(DateTimeOffset.UtcNow.AddMinutes(-5), DateTimeOffset.UtcNow.AddDays(1));
    }

    public X509Certificate2 Certificate { get; }

    /// <summary>A node certificate (server and client authentication) with its private key.</summary>
    public X509Certificate2 Issue(string nodeId)
    {
        using var nodeKey = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var request = new CertificateRequest($"CN={nodeId}", nodeKey, HashAlgorithmName.SHA256);
        request.CertificateExtensions.Add(new X509BasicConstraintsExtension(false, false, 0, true));
        request.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.DigitalSignature, true));
        request.CertificateExtensions.Add(new X509EnhancedKeyUsageExtension(
            [new Oid("1.3.6.1.5.5.7.3.1"), new Oid("1.3.6.1.5.5.7.3.2")], false));
        var san = new SubjectAlternativeNameBuilder();
        san.AddIpAddress(IPAddress.Loopback);
        san.AddDnsName(nodeId);
        request.CertificateExtensions.Add(san.Build());
        var serial = new byte[16];
        RandomNumberGenerator.Fill(serial);
        serial[0] &= 0x7f;
        using X509Certificate2 issued = request.Create(Certificate.SubjectName, X509SignatureGenerator.CreateForECDsa(key),
            DateTimeOffset.UtcNow.AddMinutes(-5), DateTimeOffset.UtcNow.AddDays(1), serial);
        using X509Certificate2 withKey = issued.CopyWithPrivateKey(nodeKey);
        // A PKCS#12 round trip gives a certificate whose key SslStream can use on every platform.
        return X509CertificateLoader.LoadPkcs12(withKey.Export(X509ContentType.Pkcs12, ""), "");
    }

    /// <summary>Accepts only a certificate chaining to this CA (names are not checked: the CA is the identity).</summary>
    public bool Validate(X509Certificate? certificate, SslPolicyErrors errors)
    {
        if (certificate is null || (errors & SslPolicyErrors.RemoteCertificateNotAvailable) != 0)
            return false;
        using var chain = new X509Chain();
        chain.ChainPolicy.TrustMode = X509ChainTrustMode.CustomRootTrust;
        chain.ChainPolicy.CustomTrustStore.Add(Certificate);
        chain.ChainPolicy.RevocationMode = X509RevocationMode.NoCheck;
        using var presented = X509CertificateLoader.LoadCertificate(certificate.GetRawCertData());
        return chain.Build(presented);
    }

    public SslServerAuthenticationOptions ServerOptions(X509Certificate2 node) => new()
    {
        ServerCertificateContext = SslStreamCertificateContext.Create(node, null),
        ClientCertificateRequired = true,
        RemoteCertificateValidationCallback = (_, certificate, _, errors) => Validate(certificate, errors),
    };

    public SslClientAuthenticationOptions ClientOptions(X509Certificate2 node) => new()
    {
        TargetHost = "useroverlay-raft",
        ClientCertificates = [node],
        RemoteCertificateValidationCallback = (_, certificate, _, errors) => Validate(certificate, errors),
    };

    public void Dispose()
    {
        Certificate.Dispose();
        key.Dispose();
    }
}

/// <summary>
/// The tests' state machine: an append-only list of byte strings with a running checksum over (index, command), which
/// also records every contract breach it sees (an index not after the previous one).
/// </summary>
public sealed class ListMachine : IReplicatedStateMachine
{
    private readonly Lock gate = new();
    private readonly List<byte[]> items = [];
    private long lastIndex;
    private ulong checksum;

    public int OrderViolations { get; private set; }

    public int Count
    {
        get
        {
            lock (gate)
                return items.Count;
        }
    }

    public (List<string> Items, ulong Checksum, long LastIndex) Read()
    {
        lock (gate)
            return ([.. items.Select(static item => System.Text.Encoding.UTF8.GetString(item))], checksum, lastIndex);
    }

    public void Apply(long index, ReadOnlySpan<byte> command)
    {
        lock (gate)
        {
            if (index <= lastIndex)
                OrderViolations++;
            lastIndex = index;
            items.Add(command.ToArray());
            checksum = Mix(checksum, index, command);
        }
    }

    private static ulong Mix(ulong sum, long index, ReadOnlySpan<byte> command)
    {
        // FNV-1a over the previous sum, the index and the command: order-sensitive.
        const ulong prime = 1099511628211;
        ulong hash = 14695981039346656037 ^ sum;
        Span<byte> prefix = stackalloc byte[8];
        BinaryPrimitives.WriteInt64LittleEndian(prefix, index);
        foreach (byte b in prefix)
            hash = (hash ^ b) * prime;
        foreach (byte b in command)
            hash = (hash ^ b) * prime;
        return hash;
    }

    public void WriteSnapshot(Stream destination)
    {
        lock (gate)
        {
            var writer = new BinaryWriter(destination, System.Text.Encoding.UTF8, leaveOpen: true);
            writer.Write(lastIndex);
            writer.Write(checksum);
            writer.Write(items.Count);
            foreach (byte[] item in items)
            {
                writer.Write(item.Length);
                writer.Write(item);
            }
            writer.Flush();
        }
    }

    public void ReadSnapshot(Stream source)
    {
        var reader = new BinaryReader(source, System.Text.Encoding.UTF8, leaveOpen: true);
        long index = reader.ReadInt64();
        ulong sum = reader.ReadUInt64();
        int count = reader.ReadInt32();
        var loaded = new List<byte[]>(count);
        for (int i = 0; i < count; i++)
            loaded.Add(reader.ReadBytes(reader.ReadInt32()));
        lock (gate)
        {
            items.Clear();
            items.AddRange(loaded);
            lastIndex = index;
            checksum = sum;
        }
    }
}

/// <summary>One test member: its log, machine, directory and ports.</summary>
public sealed class TestMember : IAsyncDisposable
{
    public required string Id { get; init; }
    public required RaftLogOptions Options { get; init; }
    public required RaftLog Log { get; set; }
    public ListMachine Machine { get; set; } = new();
    public IPEndPoint Address => Options.ListenEndPoint;
    public bool Running { get; set; }

    public async ValueTask StopAsync()
    {
        if (Running)
        {
            Running = false;
            await Log.DisposeAsync();
        }
    }

    /// <summary>A fresh log and machine over the same directory (a restart).</summary>
    public async Task RestartAsync()
    {
        await StopAsync();
        Log = new RaftLog(Options, TestRaftCluster.Logging);
        Machine = new ListMachine();
        await Log.StartAsync(Machine);
        Running = true;
    }

    public ValueTask DisposeAsync() => StopAsync();
}

/// <summary>Members on 127.0.0.1 with free ports, under one temporary directory removed at the end.</summary>
public sealed class TestRaftCluster : IAsyncDisposable
{
    private readonly List<TestMember> members = [];

    public TestRaftCluster(string name = "raft-test")
    {
        Root = Directory.CreateTempSubdirectory("useroverlay-" + name + "-").FullName;
        Ca = new TestCa("test-cluster-ca");
    }

    public string Root { get; }
    public TestCa Ca { get; }
    public IReadOnlyList<TestMember> Members => members;

    /// <summary>Makes a member (not started); <paramref name="ca"/> overrides the cluster's CA (a stranger).</summary>
    public TestMember Create(string id, TestCa? ca = null, Func<RaftLogOptions, RaftLogOptions>? tweak = null)
    {
        TestCa authority = ca ?? Ca;
        X509Certificate2 certificate = authority.Issue(id);
        var options = new RaftLogOptions
        {
            MemberId = id,
            ListenEndPoint = new IPEndPoint(IPAddress.Loopback, FreePort()),
            ForwardListenEndPoint = new IPEndPoint(IPAddress.Loopback, FreePort()),
            DataDirectory = Path.Combine(Root, id),
            ServerTls = authority.ServerOptions(certificate),
            ClientTls = authority.ClientOptions(certificate),
        };
        options = tweak?.Invoke(options) ?? options;
        var member = new TestMember { Id = id, Options = options, Log = new RaftLog(options, Logging) };
        members.Add(member);
        return member;
    }

    public async Task<TestMember> BootstrapAsync(string id, Func<RaftLogOptions, RaftLogOptions>? tweak = null)
    {
        TestMember member = Create(id, tweak: tweak);
        await member.Log.BootstrapAsync(member.Machine);
        member.Running = true;
        return member;
    }

    public async Task<TestMember> StartAsync(string id, TestCa? ca = null, Func<RaftLogOptions, RaftLogOptions>? tweak = null)
    {
        TestMember member = Create(id, ca, tweak);
        await member.Log.StartAsync(member.Machine);
        member.Running = true;
        return member;
    }

    /// <summary>A started cluster of <paramref name="count"/> members, the first bootstrapped, the others added through it.</summary>
    public async Task<List<TestMember>> StartThreeAsync(int count = 3, Func<RaftLogOptions, RaftLogOptions>? tweak = null)
    {
        var list = new List<TestMember> { await BootstrapAsync("m1", tweak) };
        for (int i = 2; i <= count; i++)
        {
            TestMember joining = await StartAsync("m" + i, tweak: tweak);
            await list[0].Log.AddMemberAsync(joining.Id, joining.Address);
            list.Add(joining);
        }
        return list;
    }

    /// <summary>DotNext's and RaftLog's logs on the console when RAFT_TEST_LOG is set (for debugging), none otherwise.</summary>
    public static Microsoft.Extensions.Logging.ILoggerFactory? Logging { get; } =
        Environment.GetEnvironmentVariable("RAFT_TEST_LOG") is { Length: > 0 } level
            ? Microsoft.Extensions.Logging.LoggerFactory.Create(builder => builder
                .AddSimpleConsole(o => { o.SingleLine = true; o.TimestampFormat = "HH:mm:ss.fff "; })
                .SetMinimumLevel(Enum.Parse<Microsoft.Extensions.Logging.LogLevel>(level, true)))
            : null;

    public static int FreePort()
    {
        using var listener = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        listener.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        return ((IPEndPoint)listener.LocalEndPoint!).Port;
    }

    /// <summary>Polls <paramref name="condition"/> until true or <paramref name="timeout"/>; fails with <paramref name="what"/>.</summary>
    public static async Task WaitUntilAsync(Func<bool> condition, TimeSpan timeout, string what)
    {
        DateTime deadline = DateTime.UtcNow + timeout;
        while (!condition())
        {
            if (DateTime.UtcNow > deadline)
                Assert.Fail($"timed out after {timeout.TotalSeconds} s waiting for {what}");
            await Task.Delay(25);
        }
    }

    public static async Task<TestMember> WaitForLeaderAsync(IEnumerable<TestMember> among, TimeSpan timeout)
    {
        TestMember? found = null;
        await WaitUntilAsync(() =>
        {
            var leaders = among.Where(static m => m.Running && m.Log.IsLeader).ToList();
            found = leaders.Count == 1 ? leaders[0] : null;
            return found is not null;
        }, timeout, "exactly one leader");
        return found!;
    }

    public async ValueTask DisposeAsync()
    {
        foreach (TestMember member in members)
            await member.DisposeAsync();
        Ca.Dispose();
        try
        {
            Directory.Delete(Root, recursive: true);
        }
        catch (IOException)
        {
        }
    }
}
