using System.Buffers.Binary;
using BenchmarkDotNet.Attributes;
using UserOverlay.Dns;
using UserOverlay.Router;

namespace UserOverlay.Bench.Dns;

/// <summary>
/// The DNS responder at a gateway, per query: the DNS worker's whole work for one UDP query frame (IPv4/UDP checks,
/// ARSoft's parse, the name table, the answer and its frame; the injector counts instead of writing a TAP), so
/// 1 / Mean is the queries per second one router answers on its one DNS thread. Also the pipeline's side: the
/// gateway handler's filter and copy into the queue (must allocate 0 B: it runs on the forwarding path), and the
/// cost of refusing a hostile message (a compression loop). Allocated = allocation per query (the library's parse).
/// Run: dotnet run -c Release --project Bench -- --filter '*Dns*'
/// </summary>
[MemoryDiagnoser]
public class DnsResponderBenchmarks
{
    private const uint Gateway = 0xC612_0001, Client = 0xC612_000B; // 198.18.0.1, 198.18.0.11
    private const ulong ClientMac = 0x0200_C612_000B;
    private readonly GatewayNetwork _net = new("blue", 4097, Gateway, Constants.GatewayMac(4097), 1450);
    private NameRegistry _names = null!;
    private DnsResponder _responder = null!;
    private byte[] _queryA = null!, _queryPtr = null!, _loop = null!, _notDns = null!;
    private readonly byte[] _reply = new byte[2048];
    private long _injected;

    [GlobalSetup]
    public void Setup()
    {
        _names = new NameRegistry();
        for (int i = 0; i < 200; i++) _names.SetNames("blue", new MacAddress(0x0200_0000_1000UL + (ulong)i), 0xC612_0100u + (uint)i, [$"svc{i}", "web"]);
        _names.SetNames("blue", new MacAddress(ClientMac), Client, ["client"]);
        _responder = new DnsResponder(_names, (_, f) => { _injected += f.Length; return true; }, new DnsResponderOptions { QueueCapacity = 64 });
        _responder.SetNetwork("blue", 0xC612_0000, 24, isInternal: false);
        _queryA = Frame(Query("svc42", 1), 53);
        _queryPtr = Frame(Query("11.0.18.198.in-addr.arpa", 12), 53);
        _loop = Frame([0x12, 0x34, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0, 1, (byte)'a', 0xC0, 12, 0, 1, 0, 1], 53);
        _notDns = Frame(Query("svc42", 1), 9999);
        _responder.Process(_net, _queryA, 17); // warm the library's paths
    }

    [GlobalCleanup]
    public void Cleanup() => _responder.Dispose();

    [Benchmark(Description = "answer A (name of the network)")]
    public void AnswerA() => _responder.Process(_net, _queryA, 17);

    [Benchmark(Description = "answer PTR")]
    public void AnswerPtr() => _responder.Process(_net, _queryPtr, 17);

    [Benchmark(Description = "refuse a compression loop")]
    public void RefuseLoop() => _responder.Process(_net, _loop, 17);

    [Benchmark(Description = "pipeline: frame not for port 53, declined")]
    public int Declined() => _responder.OnFrame(_net, _notDns, _reply);

    private static byte[] Query(string name, ushort type)
    {
        var b = new List<byte> { 0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0 };
        foreach (string l in name.Split('.'))
        {
            b.Add((byte)l.Length);
            foreach (char c in l) b.Add((byte)c);
        }
        b.AddRange([0, (byte)(type >> 8), (byte)type, 0, 1]);
        return [.. b];
    }

    // Ethernet/IPv4/UDP from the client to the gateway (checksums complete).
    private static byte[] Frame(byte[] payload, ushort dstPort)
    {
        var f = new byte[42 + payload.Length];
        var s = f.AsSpan();
        ulong gwMac = Constants.GatewayMac(4097).Value;
        BinaryPrimitives.WriteUInt16BigEndian(s, (ushort)(gwMac >> 32));
        BinaryPrimitives.WriteUInt32BigEndian(s[2..], (uint)gwMac);
        BinaryPrimitives.WriteUInt16BigEndian(s[6..], (ushort)(ClientMac >> 32));
        BinaryPrimitives.WriteUInt32BigEndian(s[8..], unchecked((uint)ClientMac));
        BinaryPrimitives.WriteUInt16BigEndian(s[12..], 0x0800);
        var ip = s[14..];
        ip[0] = 0x45;
        BinaryPrimitives.WriteUInt16BigEndian(ip[2..], (ushort)(28 + payload.Length));
        ip[8] = 64;
        ip[9] = 17;
        BinaryPrimitives.WriteUInt32BigEndian(ip[12..], Client);
        BinaryPrimitives.WriteUInt32BigEndian(ip[16..], Gateway);
        uint sum = 0;
        for (int i = 0; i < 20; i += 2) sum += BinaryPrimitives.ReadUInt16BigEndian(ip[i..]);
        while (sum > 0xFFFF) sum = (sum & 0xFFFF) + (sum >> 16);
        BinaryPrimitives.WriteUInt16BigEndian(ip[10..], (ushort)~sum);
        var udp = ip[20..];
        BinaryPrimitives.WriteUInt16BigEndian(udp, 40000);
        BinaryPrimitives.WriteUInt16BigEndian(udp[2..], dstPort);
        BinaryPrimitives.WriteUInt16BigEndian(udp[4..], (ushort)(8 + payload.Length));
        payload.CopyTo(udp[8..]);
        return f;
    }
}
