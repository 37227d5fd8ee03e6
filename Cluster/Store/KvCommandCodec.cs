using System.Buffers;
using System.Buffers.Binary;
using System.Text;

namespace UserOverlay.Cluster.Store;

/// <summary>
/// The binary form of <see cref="KvCommand"/>s (what the replicated log carries) and of <see cref="KvResult"/>s and
/// <see cref="KeyValue"/>s (what the state machine's snapshot holds). Little-endian throughout:
/// <code>
/// command = version:u8 (1) kind:u8 requestId:16 body
///   Txn (1)            : u16 n, n × compare; u16 n, n × op; u8 hasFailure, [u16 n, n × op]
///     compare          : target:u8 result:u8 key:str number:i64 value:optbytes
///     op               : kind:u8 flags:u8 (1 = prefix) key:str lease:i64 value:optbytes
///   LeaseGrant (2)     : ttlSeconds:i64
///   LeaseKeepAlive (3) : leaseId:i64
///   LeaseRevoke (4)    : leaseId:i64
/// str = u32 length, UTF-8 (at most <see cref="StoreLimits.MaxKeyBytes"/>); optbytes = u8 present, [u32 length, bytes]
/// </code>
/// Decoding checks every length against what remains and against <see cref="StoreLimits"/>, rejects unknown
/// versions, kinds and enum values and trailing bytes, and reports a failure instead of throwing.
/// <para>WARNING: only append — the numeric values (kinds, enums) are in the log and in snapshots.</para>
/// </summary>
internal static class KvCommandCodec
{
    /// <summary>The command format's version.</summary>
    public const byte Version = 1;

    /// <summary>Bytes before a command's body: version, kind, request id.</summary>
    public const int HeaderLength = 18;

    private const byte KindTxn = 1, KindLeaseGrant = 2, KindLeaseKeepAlive = 3, KindLeaseRevoke = 4;

    private static readonly UTF8Encoding StrictUtf8 = new(encoderShouldEmitUTF8Identifier: false, throwOnInvalidBytes: true);

    /// <summary>Encodes <paramref name="command"/> (validate it first with <see cref="KvValidation"/>).</summary>
    public static byte[] Encode(KvCommand command)
    {
        var w = new KvWriter();
        w.U8(Version);
        switch (command)
        {
            case TxnCommand t:
                w.U8(KindTxn);
                w.Guid(t.RequestId);
                w.U16(t.Request.Compares.Count);
                foreach (var c in t.Request.Compares)
                {
                    w.U8((byte)c.Target);
                    w.U8((byte)c.Result);
                    w.Str(c.Key);
                    w.I64(c.Number);
                    w.OptBytes(c.Value);
                }
                WriteOps(w, t.Request.Success);
                w.U8(t.Request.Failure is null ? (byte)0 : (byte)1);
                if (t.Request.Failure is not null) WriteOps(w, t.Request.Failure);
                break;
            case LeaseGrantCommand g:
                w.U8(KindLeaseGrant);
                w.Guid(g.RequestId);
                w.I64(g.TtlSeconds);
                break;
            case LeaseKeepAliveCommand k:
                w.U8(KindLeaseKeepAlive);
                w.Guid(k.RequestId);
                w.I64(k.LeaseId);
                break;
            case LeaseRevokeCommand r:
                w.U8(KindLeaseRevoke);
                w.Guid(r.RequestId);
                w.I64(r.LeaseId);
                break;
            default:
                throw new ArgumentException($"unknown command type {command.GetType().Name}", nameof(command));
        }
        return w.ToArray();
    }

    private static void WriteOps(KvWriter w, IReadOnlyList<Op> ops)
    {
        w.U16(ops.Count);
        foreach (var op in ops)
        {
            w.U8((byte)op.Kind);
            w.U8(op.Prefix ? (byte)1 : (byte)0);
            w.Str(op.Key);
            w.I64(op.Lease);
            w.OptBytes(op.Value);
        }
    }

    /// <summary>
    /// Decodes a command. On failure, <paramref name="error"/> says why and <paramref name="requestId"/> is still the
    /// request id when the header was intact (so the proposer can be told), else <see cref="Guid.Empty"/>. Never throws.
    /// </summary>
    public static bool TryDecode(ReadOnlySpan<byte> data, out KvCommand? command, out Guid requestId, out string error)
    {
        command = null;
        requestId = Guid.Empty;
        if (data.Length < HeaderLength)
        {
            error = $"a command is at least {HeaderLength} bytes, this one is {data.Length}";
            return false;
        }
        if (data[0] != Version)
        {
            error = $"command version {data[0]} is not {Version}";
            return false;
        }
        requestId = new Guid(data.Slice(2, 16));
        var r = new KvReader(data[HeaderLength..]);
        try
        {
            command = data[1] switch
            {
                KindTxn => ReadTxn(ref r, requestId),
                KindLeaseGrant => new LeaseGrantCommand(requestId, r.I64()),
                KindLeaseKeepAlive => new LeaseKeepAliveCommand(requestId, r.I64()),
                KindLeaseRevoke => new LeaseRevokeCommand(requestId, r.I64()),
                _ => throw new KvFormatException($"unknown command kind {data[1]}"),
            };
            r.End();
            error = "";
            return true;
        }
        catch (KvFormatException e)
        {
            command = null;
            error = e.Message;
            return false;
        }
    }

    private static TxnCommand ReadTxn(ref KvReader r, Guid id)
    {
        int n = r.Count("compares");
        var compares = new Compare[n];
        for (int i = 0; i < n; i++)
        {
            var target = r.U8();
            if (target > (byte)CompareTarget.Lease) throw new KvFormatException($"compare {i}: unknown target {target}");
            var result = r.U8();
            if (result > (byte)CompareResult.Greater) throw new KvFormatException($"compare {i}: unknown result {result}");
            compares[i] = new Compare(r.Str(), (CompareTarget)target, (CompareResult)result, r.I64(), r.OptBytes());
        }
        var success = ReadOps(ref r, "success");
        var failure = r.U8() switch
        {
            0 => null,
            1 => ReadOps(ref r, "failure"),
            var f => throw new KvFormatException($"failure flag {f} is not 0 or 1"),
        };
        return new TxnCommand(id, new TxnRequest(compares, success, failure));
    }

    private static Op[] ReadOps(ref KvReader r, string branch)
    {
        int n = r.Count(branch);
        var ops = new Op[n];
        for (int i = 0; i < n; i++)
        {
            var kind = r.U8();
            if (kind > (byte)OpKind.Delete) throw new KvFormatException($"{branch} op {i}: unknown kind {kind}");
            var flags = r.U8();
            if (flags > 1) throw new KvFormatException($"{branch} op {i}: unknown flags {flags}");
            ops[i] = new Op((OpKind)kind, r.Str(), Lease: r.I64(), Value: r.OptBytes(), Prefix: flags == 1);
        }
        return ops;
    }

    // The snapshot's parts: keys and results (for the de-duplication table).

    internal static void WriteKeyValue(KvWriter w, KeyValue kv)
    {
        w.Str(kv.Key);
        w.Bytes(kv.Value);
        w.I64(kv.CreateRevision);
        w.I64(kv.ModRevision);
        w.I64(kv.Version);
        w.I64(kv.Lease);
    }

    internal static KeyValue ReadKeyValue(ref KvReader r) => new(r.Str(), r.Bytes(), r.I64(), r.I64(), r.I64(), r.I64());

    internal static void WriteResult(KvWriter w, KvResult result)
    {
        if (result.Error is { } code)
        {
            w.U8(1);
            w.U8((byte)code);
            w.Str(result.Message ?? "", StoreLimits.MaxTxnBytes);
        }
        else if (result.Txn is { } t)
        {
            w.U8(2);
            w.U8(t.Succeeded ? (byte)1 : (byte)0);
            w.I64(t.Revision);
            w.U32((uint)t.Responses.Count);
            foreach (var op in t.Responses)
            {
                w.U32((uint)op.Kvs.Count);
                foreach (var kv in op.Kvs) WriteKeyValue(w, kv);
                w.I64(op.Deleted);
                w.U8(op.Previous is null ? (byte)0 : (byte)1);
                if (op.Previous is not null) WriteKeyValue(w, op.Previous);
            }
        }
        else if (result.Lease is { } l)
        {
            w.U8(3);
            w.I64(l.Id);
            w.I64((long)l.Ttl.TotalSeconds);
        }
        else
        {
            w.U8(4);
            w.I64(result.TtlSeconds);
        }
    }

    internal static KvResult ReadResult(ref KvReader r)
    {
        switch (r.U8())
        {
            case 1:
                var code = r.U8();
                if (code > (byte)StoreErrorCode.Closed) throw new KvFormatException($"unknown error code {code}");
                return KvResult.Failed((StoreErrorCode)code, r.Str(StoreLimits.MaxTxnBytes));
            case 2:
                bool ok = r.U8() == 1;
                long revision = r.I64();
                int n = r.Count32();
                var responses = new OpResponse[n];
                for (int i = 0; i < n; i++)
                {
                    int m = r.Count32();
                    var kvs = new KeyValue[m];
                    for (int j = 0; j < m; j++) kvs[j] = ReadKeyValue(ref r);
                    long deleted = r.I64();
                    var previous = r.U8() == 1 ? ReadKeyValue(ref r) : null;
                    responses[i] = new OpResponse(kvs, deleted, previous);
                }
                return new KvResult(Txn: new TxnResult(ok, revision, responses));
            case 3:
                return new KvResult(Lease: new Lease(r.I64(), TimeSpan.FromSeconds(r.I64())));
            case 4:
                return new KvResult(TtlSeconds: r.I64());
            case var k:
                throw new KvFormatException($"unknown result kind {k}");
        }
    }

    internal static string DecodeString(ReadOnlySpan<byte> utf8)
    {
        try { return StrictUtf8.GetString(utf8); }
        catch (DecoderFallbackException) { throw new KvFormatException("a string is not valid UTF-8"); }
    }
}

/// <summary>A malformed command or snapshot (caught inside the codec and the state machine, never thrown out of Apply).</summary>
internal sealed class KvFormatException(string message) : Exception(message);

/// <summary>Appends little-endian fields to a growing buffer (control plane: clarity over allocation).</summary>
internal sealed class KvWriter
{
    private readonly ArrayBufferWriter<byte> _buffer = new(256);

    public int Length => _buffer.WrittenCount;

    public void U8(byte v) { _buffer.GetSpan(1)[0] = v; _buffer.Advance(1); }

    public void U16(int v)
    {
        if ((uint)v > ushort.MaxValue) throw new ArgumentOutOfRangeException(nameof(v), v, "more than 65535 items");
        BinaryPrimitives.WriteUInt16LittleEndian(_buffer.GetSpan(2), (ushort)v);
        _buffer.Advance(2);
    }

    public void U32(uint v) { BinaryPrimitives.WriteUInt32LittleEndian(_buffer.GetSpan(4), v); _buffer.Advance(4); }

    public void I64(long v) { BinaryPrimitives.WriteInt64LittleEndian(_buffer.GetSpan(8), v); _buffer.Advance(8); }

    public void Guid(Guid g) { g.TryWriteBytes(_buffer.GetSpan(16)); _buffer.Advance(16); }

    public void Bytes(ReadOnlySpan<byte> b)
    {
        U32((uint)b.Length);
        b.CopyTo(_buffer.GetSpan(b.Length));
        _buffer.Advance(b.Length);
    }

    public void OptBytes(byte[]? b)
    {
        U8(b is null ? (byte)0 : (byte)1);
        if (b is not null) Bytes(b);
    }

    public void Str(string s, int max = StoreLimits.MaxKeyBytes)
    {
        int n = Encoding.UTF8.GetByteCount(s);
        if (n > max) throw new ArgumentException($"a string of {n} UTF-8 bytes exceeds {max}", nameof(s));
        U32((uint)n);
        Encoding.UTF8.GetBytes(s, _buffer.GetSpan(n));
        _buffer.Advance(n);
    }

    public byte[] ToArray() => _buffer.WrittenSpan.ToArray();

    public ReadOnlySpan<byte> Written => _buffer.WrittenSpan;
}

/// <summary>Reads little-endian fields, checking every length against what remains (throws <see cref="KvFormatException"/>).</summary>
internal ref struct KvReader(ReadOnlySpan<byte> data)
{
    private readonly ReadOnlySpan<byte> _data = data;
    private int _at;

    public readonly int Remaining => _data.Length - _at;

    private ReadOnlySpan<byte> Take(int n, string what)
    {
        if (n < 0 || n > Remaining) throw new KvFormatException($"{what}: {n} bytes needed, {Remaining} left");
        var s = _data.Slice(_at, n);
        _at += n;
        return s;
    }

    public byte U8() => Take(1, "u8")[0];

    public ushort U16() => BinaryPrimitives.ReadUInt16LittleEndian(Take(2, "u16"));

    public uint U32() => BinaryPrimitives.ReadUInt32LittleEndian(Take(4, "u32"));

    public long I64() => BinaryPrimitives.ReadInt64LittleEndian(Take(8, "i64"));

    public Guid Guid() => new(Take(16, "guid"));

    /// <summary>A transaction's compare or op count, at most <see cref="StoreLimits.MaxTxnOps"/>.</summary>
    public int Count(string what)
    {
        int n = U16();
        if (n > StoreLimits.MaxTxnOps) throw new KvFormatException($"{what}: {n} items exceed {StoreLimits.MaxTxnOps}");
        return n;
    }

    /// <summary>A count of items that each take at least one byte (so it cannot exceed what remains).</summary>
    public int Count32()
    {
        uint n = U32();
        if (n > (uint)Remaining) throw new KvFormatException($"a count of {n} exceeds the {Remaining} bytes left");
        return (int)n;
    }

    public byte[] Bytes()
    {
        uint n = U32();
        if (n > (uint)Remaining) throw new KvFormatException($"a value of {n} bytes exceeds the {Remaining} left");
        return Take((int)n, "value").ToArray();
    }

    public byte[]? OptBytes() => U8() switch
    {
        0 => null,
        1 => Bytes(),
        var f => throw new KvFormatException($"presence flag {f} is not 0 or 1"),
    };

    public string Str(int max = StoreLimits.MaxKeyBytes)
    {
        uint n = U32();
        if (n > (uint)max) throw new KvFormatException($"a string of {n} bytes exceeds {max}");
        return KvCommandCodec.DecodeString(Take((int)n, "string"));
    }

    public readonly void End()
    {
        if (Remaining != 0) throw new KvFormatException($"{Remaining} bytes after the end");
    }
}
