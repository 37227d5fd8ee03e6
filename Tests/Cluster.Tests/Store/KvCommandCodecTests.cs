using System.Text;
using UserOverlay.Cluster.Store;

namespace UserOverlay.Cluster.Tests.Store;

public class KvCommandCodecTests
{
    private static readonly Guid Id = Guid.Parse("0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0");

    private static TxnCommand Sample() => new(Id, new TxnRequest(
        [Compare.Missing("a"), new Compare("b", CompareTarget.Value, CompareResult.Less, Value: [1, 2]), Compare.ModifiedAt("c", 42)],
        [Op.Put("a", Encoding.UTF8.GetBytes("é"), lease: 7), Op.DeletePrefix("d/"), Op.GetPrefix("")],
        [Op.Get("a"), Op.Delete("x")]));

    [Fact]
    public void Every_command_round_trips()
    {
        KvCommand[] commands = [Sample(), new LeaseGrantCommand(Id, 10), new LeaseKeepAliveCommand(Id, 5), new LeaseRevokeCommand(Id, long.MaxValue),
            new TxnCommand(Id, new TxnRequest([], []))];
        foreach (var c in commands)
        {
            var bytes = KvCommandCodec.Encode(c);
            Assert.True(KvCommandCodec.TryDecode(bytes, out var back, out var id, out string error), error);
            Assert.Equal(Id, id);
            Assert.Equal(KvCommandCodec.Encode(back!), bytes);
        }
        Assert.True(KvCommandCodec.TryDecode(KvCommandCodec.Encode(Sample()), out var txn, out _, out _));
        var t = Assert.IsType<TxnCommand>(txn).Request;
        Assert.Equal(Sample().Request.Compares[2], t.Compares[2]);
        Assert.Equal([1, 2], t.Compares[1].Value);
        Assert.Equal("é", Encoding.UTF8.GetString(t.Success[0].Value!));
        Assert.True(t.Success[1].Prefix);
        Assert.Equal(7, t.Success[0].Lease);
        Assert.True(KvCommandCodec.TryDecode(KvCommandCodec.Encode(new TxnCommand(Id, new TxnRequest([], []))), out var empty, out _, out _));
        Assert.Null(((TxnCommand)empty!).Request.Failure);
    }

    [Fact]
    public void Every_truncation_and_every_trailing_byte_is_a_failure_not_an_exception()
    {
        var bytes = KvCommandCodec.Encode(Sample());
        for (int n = 0; n < bytes.Length; n++)
        {
            Assert.False(KvCommandCodec.TryDecode(bytes.AsSpan(0, n), out var c, out var id, out string error));
            Assert.Null(c);
            Assert.NotEmpty(error);
            Assert.Equal(n >= KvCommandCodec.HeaderLength ? Id : Guid.Empty, id);
        }
        Assert.False(KvCommandCodec.TryDecode([.. bytes, 0], out _, out _, out string trailing));
        Assert.Contains("after the end", trailing);
    }

    [Fact]
    public void Unknown_versions_kinds_and_enum_values_are_refused()
    {
        var bytes = KvCommandCodec.Encode(Sample());
        var v2 = (byte[])bytes.Clone();
        v2[0] = 2;
        Assert.False(KvCommandCodec.TryDecode(v2, out _, out _, out string version));
        Assert.Contains("version 2", version);
        var kind = (byte[])bytes.Clone();
        kind[1] = 9;
        Assert.False(KvCommandCodec.TryDecode(kind, out _, out var id, out string k));
        Assert.Contains("kind 9", k);
        Assert.Equal(Id, id);
        var target = (byte[])bytes.Clone();
        target[KvCommandCodec.HeaderLength + 2] = 77; // the first compare's target
        Assert.False(KvCommandCodec.TryDecode(target, out _, out _, out string t));
        Assert.Contains("target 77", t);
    }

    [Fact]
    public void Hostile_lengths_and_random_bytes_never_throw()
    {
        var bytes = KvCommandCodec.Encode(Sample());
        var huge = (byte[])bytes.Clone();
        huge[KvCommandCodec.HeaderLength + 4] = 0xff; // the first compare key's length: 0xff000001..
        huge[KvCommandCodec.HeaderLength + 7] = 0x7f;
        Assert.False(KvCommandCodec.TryDecode(huge, out _, out _, out _));
        var random = new Random(1234);
        for (int i = 0; i < 2000; i++)
        {
            var mutated = (byte[])bytes.Clone();
            for (int j = 0; j < 3; j++) mutated[random.Next(2, mutated.Length)] = (byte)random.Next(256);
            KvCommandCodec.TryDecode(mutated, out _, out _, out _); // must not throw
            var noise = new byte[random.Next(0, 64)];
            random.NextBytes(noise);
            if (noise.Length > 0) noise[0] = KvCommandCodec.Version;
            KvCommandCodec.TryDecode(noise, out _, out _, out _);
        }
    }

    [Fact]
    public void Validation_names_the_field()
    {
        Assert.Null(KvValidation.Check(Sample().Request));
        var cases = new (TxnRequest Request, StoreErrorCode Code, string Field)[]
        {
            (new([], [Op.Put("", [1])]), StoreErrorCode.InvalidArgument, "txn.success[0].key"),
            (new([], [new Op(OpKind.Put, "k")]), StoreErrorCode.InvalidArgument, "txn.success[0].value"),
            (new([Compare.Missing(new string('k', StoreLimits.MaxKeyBytes + 1))], []), StoreErrorCode.TooLarge, "txn.compares[0].key"),
            (new([], [.. Enumerable.Range(0, StoreLimits.MaxTxnOps + 1).Select(i => Op.Get($"k{i}"))]), StoreErrorCode.TooLarge, "txn.success"),
            (new([], [Op.Put("a", new byte[StoreLimits.MaxTxnBytes])]), StoreErrorCode.TooLarge, "txn:"),
            (new([], [Op.Put("a", [1]), Op.Put("a", [2])]), StoreErrorCode.InvalidArgument, "txn.success[1].key"),
            (new([], [Op.Put("a/b", [1])], [Op.Put("a/b", [1]), Op.DeletePrefix("a/")]), StoreErrorCode.InvalidArgument, "txn.failure[1].key"),
            (new([], [Op.Put("\ud800", [1])]), StoreErrorCode.InvalidArgument, "Unicode"),
            (new([new Compare("k", (CompareTarget)9, CompareResult.Equal)], []), StoreErrorCode.InvalidArgument, "txn.compares[0].target"),
        };
        foreach (var (request, code, field) in cases)
        {
            var e = KvValidation.Check(request);
            Assert.NotNull(e);
            Assert.Equal(code, e.Code);
            Assert.Contains(field, e.Message);
        }
        KvValidation.TtlSeconds(TimeSpan.FromMilliseconds(999), out var ttl);
        Assert.Equal(StoreErrorCode.InvalidArgument, ttl!.Code);
        Assert.Equal(2, KvValidation.TtlSeconds(TimeSpan.FromMilliseconds(1001), out _));
    }
}
