using UserOverlay.Cluster.Replication;
using UserOverlay.Cluster.Store;
using UserOverlay.Cluster.Tests.Manager;

namespace UserOverlay.Cluster.Tests.Store;

/// <summary>
/// Thousands of random transactions run on the embedded store and on the plainest model of the contract
/// (<see cref="NaiveStore"/>, the managers' test double): every answer and the final key space must agree.
/// </summary>
public class ReferenceModelTests
{
    private static readonly string[] Keys = ["a", "a/1", "a/2", "a/22", "b", "b/1", "b/x/1", "c"];
    private static readonly string[] Prefixes = ["", "a", "a/", "a/2", "b/", "b/x/", "z"];

    private static Compare RandomCompare(Random r)
    {
        string key = Keys[r.Next(Keys.Length)];
        var result = (CompareResult)r.Next(4);
        return r.Next(5) switch
        {
            0 => new Compare(key, CompareTarget.Version, result, r.Next(3)),
            1 => new Compare(key, CompareTarget.ModRevision, result, r.Next(40)),
            2 => new Compare(key, CompareTarget.CreateRevision, result, r.Next(40)),
            3 => new Compare(key, CompareTarget.Value, result, Value: [(byte)r.Next(4)]),
            _ => new Compare(key, CompareTarget.Lease, result, 0),
        };
    }

    private static List<Op> RandomOps(Random r)
    {
        var ops = new List<Op>();
        var written = new HashSet<string>();
        int n = r.Next(0, 5);
        for (int i = 0; i < n; i++)
        {
            switch (r.Next(5))
            {
                case 0:
                case 1:
                    // As etcd, one branch may not write a key twice, nor put a key it deletes.
                    string key = Keys[r.Next(Keys.Length)];
                    bool deleted = ops.Any(o => o.Kind == OpKind.Delete && (o.Prefix ? key.StartsWith(o.Key, StringComparison.Ordinal) : key == o.Key));
                    if (!deleted && written.Add(key)) ops.Add(Op.Put(key, [(byte)r.Next(4)]));
                    break;
                case 2:
                    string d = Keys[r.Next(Keys.Length)];
                    if (!written.Contains(d)) ops.Add(Op.Delete(d));
                    break;
                case 3:
                    string p = Prefixes[r.Next(Prefixes.Length)];
                    if (!written.Any(k => k.StartsWith(p, StringComparison.Ordinal))) ops.Add(Op.DeletePrefix(p));
                    break;
                default:
                    ops.Add(r.Next(2) == 0 ? Op.Get(Keys[r.Next(Keys.Length)]) : Op.GetPrefix(Prefixes[r.Next(Prefixes.Length)]));
                    break;
            }
        }
        return ops;
    }

    private static string Show(KeyValue? kv) => kv is null ? "-" : $"{kv.Key}={Convert.ToHexString(kv.Value)}@{kv.CreateRevision}/{kv.ModRevision}/v{kv.Version}";

    private static string Show(TxnResult t) =>
        $"{t.Succeeded} rev {t.Revision}: " + string.Join(" | ", t.Responses.Select(o => $"[{string.Join(",", o.Kvs.Select(Show))}] del {o.Deleted} prev {Show(o.Previous)}"));

    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    [InlineData(3)]
    public async Task Random_transactions_agree_with_the_naive_model(int seed)
    {
        var r = new Random(seed);
        var model = new NaiveStore();
        await using var store = new ReplicatedClusterStore(new LocalLog(null));
        await store.StartAsync();
        for (int i = 0; i < 1500; i++)
        {
            var request = new TxnRequest([.. Enumerable.Range(0, r.Next(0, 3)).Select(_ => RandomCompare(r))], RandomOps(r), r.Next(2) == 0 ? RandomOps(r) : null);
            var expected = await model.TxnAsync(request);
            var actual = await store.TxnAsync(request);
            Assert.True(Show(expected) == Show(actual), $"transaction {i}: model {Show(expected)}, store {Show(actual)}");
            if (i % 100 == 0)
            {
                string p = Prefixes[r.Next(Prefixes.Length)];
                int limit = r.Next(0, 4);
                var m = await model.RangeAsync(p, limit);
                var s = await store.RangeAsync(p, limit);
                Assert.Equal((m.Revision, m.More, string.Join(",", m.Kvs.Select(Show))), (s.Revision, s.More, string.Join(",", s.Kvs.Select(Show))));
            }
        }
        Assert.Equal(model.Revision, store.Revision);
        Assert.Equal((await model.RangeAsync("")).Kvs.Select(Show), (await store.RangeAsync("")).Kvs.Select(Show));
        Assert.True(store.Revision > 100, $"the random transactions changed too little (revision {store.Revision})");
    }
}
