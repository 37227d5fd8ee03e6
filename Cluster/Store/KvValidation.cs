using System.Text;

namespace UserOverlay.Cluster.Store;

/// <summary>
/// The checks every transaction passes before it is proposed (so a bad one costs no log entry) and again when it is
/// applied (so a command that bypassed the proposer's checks is refused the same way on every member):
/// <see cref="StoreLimits"/> (<see cref="StoreErrorCode.TooLarge"/>), empty keys, puts without a value, unknown enum
/// values, keys that are not valid Unicode, and — as etcd — a key written twice by one branch
/// (<see cref="StoreErrorCode.InvalidArgument"/>). Each message names the field.
/// </summary>
public static class KvValidation
{
    private static readonly UTF8Encoding StrictUtf8 = new(encoderShouldEmitUTF8Identifier: false, throwOnInvalidBytes: true);

    /// <summary>The refusal for <paramref name="request"/>, or null when it is acceptable.</summary>
    public static StoreException? Check(TxnRequest? request)
    {
        if (request is null || request.Compares is null || request.Success is null)
            return Invalid("txn: compares and success are required");
        if (request.Compares.Count > StoreLimits.MaxTxnOps)
            return TooLarge($"txn.compares: {request.Compares.Count} exceed {StoreLimits.MaxTxnOps}");
        if (request.Success.Count > StoreLimits.MaxTxnOps)
            return TooLarge($"txn.success: {request.Success.Count} operations exceed {StoreLimits.MaxTxnOps}");
        if (request.Failure is { Count: > StoreLimits.MaxTxnOps })
            return TooLarge($"txn.failure: {request.Failure.Count} operations exceed {StoreLimits.MaxTxnOps}");
        long bytes = 0;
        for (int i = 0; i < request.Compares.Count; i++)
        {
            var c = request.Compares[i];
            string field = $"txn.compares[{i}]";
            if (c is null) return Invalid($"{field}: missing");
            if (!Enum.IsDefined(c.Target)) return Invalid($"{field}.target: unknown value {(int)c.Target}");
            if (!Enum.IsDefined(c.Result)) return Invalid($"{field}.result: unknown value {(int)c.Result}");
            if (KeyError(c.Key, field + ".key", allowEmpty: false, ref bytes) is { } e) return e;
            bytes += c.Value?.Length ?? 0;
        }
        if (Ops(request.Success, "txn.success", ref bytes) is { } s) return s;
        if (request.Failure is not null && Ops(request.Failure, "txn.failure", ref bytes) is { } f) return f;
        if (bytes > StoreLimits.MaxTxnBytes)
            return TooLarge($"txn: {bytes} bytes of keys and values exceed {StoreLimits.MaxTxnBytes}");
        return null;
    }

    private static StoreException? Ops(IReadOnlyList<Op> ops, string branch, ref long bytes)
    {
        HashSet<string>? puts = null;
        for (int i = 0; i < ops.Count; i++)
        {
            var op = ops[i];
            string field = $"{branch}[{i}]";
            if (op is null) return Invalid($"{field}: missing");
            if (!Enum.IsDefined(op.Kind)) return Invalid($"{field}.kind: unknown value {(int)op.Kind}");
            if (KeyError(op.Key, field + ".key", allowEmpty: op.Prefix && op.Kind != OpKind.Put, ref bytes) is { } e) return e;
            if (op.Lease < 0) return Invalid($"{field}.lease: {op.Lease} is negative");
            if (op.Kind == OpKind.Put)
            {
                if (op.Prefix) return Invalid($"{field}.prefix: a put writes one key");
                if (op.Value is null) return Invalid($"{field}.value: a put needs a value");
                bytes += op.Value.Length;
                puts ??= new HashSet<string>(StringComparer.Ordinal);
                if (!puts.Add(op.Key)) return Invalid($"{field}.key: '{op.Key}' is written twice in one transaction");
            }
            else if (op.Lease != 0) return Invalid($"{field}.lease: only a put takes a lease");
        }
        if (puts is null) return null;
        // As etcd: a delete may not overlap a put of the same branch.
        for (int i = 0; i < ops.Count; i++)
        {
            var op = ops[i];
            if (op.Kind != OpKind.Delete) continue;
            bool overlaps = op.Prefix ? puts.Any(k => k.StartsWith(op.Key, StringComparison.Ordinal)) : puts.Contains(op.Key);
            if (overlaps) return Invalid($"{branch}[{i}].key: '{op.Key}' deletes a key the same transaction puts");
        }
        return null;
    }

    private static StoreException? KeyError(string? key, string field, bool allowEmpty, ref long bytes)
    {
        if (key is null || (key.Length == 0 && !allowEmpty)) return Invalid($"{field}: a key is required");
        int n;
        try { n = StrictUtf8.GetByteCount(key); }
        catch (EncoderFallbackException) { return Invalid($"{field}: not valid Unicode (a lone surrogate)"); }
        if (n > StoreLimits.MaxKeyBytes) return TooLarge($"{field}: {n} UTF-8 bytes exceed {StoreLimits.MaxKeyBytes}");
        bytes += n;
        return null;
    }

    /// <summary>Checks a key given to a read (<paramref name="allowEmpty"/> for a prefix).</summary>
    public static StoreException? CheckKey(string? key, string field, bool allowEmpty)
    {
        long bytes = 0;
        return KeyError(key, field, allowEmpty, ref bytes);
    }

    /// <summary>The most a lease may live (etcd's limit), in seconds.</summary>
    public const long MaxLeaseTtlSeconds = 9_000_000_000;

    /// <summary>A lease TTL in whole seconds (rounded up), or the refusal.</summary>
    public static long TtlSeconds(TimeSpan ttl, out StoreException? error)
    {
        error = null;
        if (ttl < TimeSpan.FromSeconds(1))
        {
            error = Invalid($"ttl: {ttl} is under the 1 s minimum");
            return 0;
        }
        double s = Math.Ceiling(ttl.TotalSeconds);
        if (s > MaxLeaseTtlSeconds)
        {
            error = Invalid($"ttl: {ttl} exceeds the {MaxLeaseTtlSeconds} s maximum");
            return 0;
        }
        return (long)s;
    }

    private static StoreException Invalid(string message) => new(StoreErrorCode.InvalidArgument, message);

    private static StoreException TooLarge(string message) => new(StoreErrorCode.TooLarge, message);
}
