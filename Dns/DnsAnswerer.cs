using System.Buffers.Binary;
using ARSoft.Tools.Net.Dns;

namespace UserOverlay.Dns;

// How a query to a gateway is answered (on the DNS worker's thread, never on the pipeline):
//
//  1. A cheap check of the 12-byte header first (a response, another opcode, not exactly one question, records in the
//     answer or authority sections: dropped, not_query), so a flood of garbage never reaches the parser.
//  2. The message is parsed by ARSoft.Tools.Net (DnsMessage.Parse): it refuses compression loops, pointers out of the
//     message, truncated records and bad labels with an exception (unparsable). The library's encoder is not public, so
//     the answer (header, the question, A/PTR records, an OPT record when the query had EDNS) is written here: fixed
//     fields and one compression pointer to the question's name.
//  3. The question's name is looked up on the asker's network only (NameRegistry): a name → its A records (all
//     endpoints under it, round-robin), other types of a known name → no records (NOERROR, so a resolver asking AAAA
//     does not wait), an in-addr.arpa name of an endpoint's address → PTR; an address of the network's subnet
//     nobody has → NXDOMAIN. Anything else is forwarded upstream, or NXDOMAIN on an internal network (or without upstreams).
//  4. An answer larger than the asker's UDP limit (512, or its EDNS size up to 1232 and the network's MTU) carries the
//     records that fit and TC=1.

/// <summary>What to do with a query.</summary>
internal enum DnsOutcome
{
    /// <summary>The answer was written.</summary>
    Answer,
    /// <summary>Not a name of the network: send the query to an upstream resolver.</summary>
    Forward,
    /// <summary>Dropped for the reason given.</summary>
    Drop,
}

/// <summary>Answers queries from a <see cref="NameRegistry"/> (steps above). Not thread-safe: one per DNS worker.</summary>
internal sealed class DnsAnswerer(NameRegistry names)
{
    /// <summary>The largest UDP answer ever sent (RFC 9715's advice for EDNS), and the classic limit.</summary>
    public const int MaxUdpAnswer = 1232, ClassicUdpLimit = 512;
    /// <summary>TTL of the answers: short, so a name that moves or goes is not held long by a caching client.</summary>
    public const int Ttl = 10;
    private const int HeaderLength = 12;
    private const ushort TypeA = 1, TypePtr = 12, TypeOpt = 41, TypeAny = 255, ClassIn = 1;
    private const int RcodeNoError = 0, RcodeNxDomain = 3, RcodeRefused = 5, RcodeServFail = 2;

    private readonly byte[] _parse = new byte[65535]; // the query, copied so the library can have an array

    /// <summary>The network as the answerer needs it.</summary>
    public sealed record NetworkContext(string Name, uint Subnet, int PrefixLength, bool Forwards, int Mtu);

    /// <summary>
    /// Answers <paramref name="query"/> from a client of <paramref name="net"/> into <paramref name="answer"/> (a UDP
    /// payload), its length in <paramref name="length"/>. <paramref name="why"/> is set for <see cref="DnsOutcome.Drop"/>.
    /// </summary>
    public DnsOutcome Answer(NetworkContext net, ReadOnlySpan<byte> query, Span<byte> answer, out int length, out DnsDropReason why, out bool nxDomain, out bool truncated, bool tcp = false)
    {
        length = 0;
        why = default;
        nxDomain = truncated = false;
        if (!LooksLikeQuery(query)) { why = DnsDropReason.NotQuery; return DnsOutcome.Drop; }
        int limit = Math.Min(MaxUdpAnswer, net.Mtu - DnsFrames.Ipv4Header - DnsFrames.UdpHeader);
        if (!tcp && query.Length > limit) { why = DnsDropReason.Oversized; return DnsOutcome.Drop; }
        DnsMessage message;
        query.CopyTo(_parse);
        try
        {
            message = DnsMessage.Parse(new ArraySegment<byte>(_parse, 0, query.Length));
        }
        catch (Exception e) when (e is FormatException or ArgumentException or IndexOutOfRangeException or OverflowException or InvalidOperationException or NotSupportedException)
        {
            why = DnsDropReason.Unparsable;
            return DnsOutcome.Drop;
        }
        if (message.Questions.Count != 1) { why = DnsDropReason.NotQuery; return DnsOutcome.Drop; }
        var q = message.Questions[0];
        string[] labels = q.Name.Labels;
        int nameLength = 1;
        foreach (string l in labels)
        {
            if (l.Length is 0 or > 63 || l.Any(c => c > 0xFF)) { why = DnsDropReason.Unparsable; return DnsOutcome.Drop; }
            nameLength += 1 + l.Length;
        }
        if (nameLength > 255) { why = DnsDropReason.Unparsable; return DnsOutcome.Drop; }
        ushort type = (ushort)q.RecordType, cls = (ushort)q.RecordClass;
        int udpLimit = ClassicUdpLimit;
        if (message.IsEDnsEnabled && message.EDnsOptions is { } opt) udpLimit = Math.Clamp((int)opt.UdpPayloadSize, ClassicUdpLimit, limit);
        else udpLimit = Math.Min(udpLimit, limit);
        if (tcp) udpLimit = Math.Min(answer.Length, 65535); // over TCP the answer's limit is the 2-byte length
        var w = new Writer(answer[..udpLimit], BinaryPrimitives.ReadUInt16BigEndian(query), query[2], labels, type, cls, net.Forwards, message.IsEDnsEnabled);
        if (!w.Fits) { why = DnsDropReason.Oversized; return DnsOutcome.Drop; }

        if (cls != ClassIn && cls != TypeAny) { length = w.Finish(RcodeRefused, out truncated); return DnsOutcome.Answer; }
        string name = NameRegistry.Canonical(q.Name.ToString());
        if (TryReverse(labels, out uint address))
        {
            if (names.Reverse(net.Name, address) is { } owner)
            {
                if (type is TypePtr or TypeAny) w.AddPtr(owner);
                length = w.Finish(RcodeNoError, out truncated);
                return DnsOutcome.Answer;
            }
            if (net.PrefixLength > 0 && (address ^ net.Subnet) >> (32 - net.PrefixLength) == 0)
            {
                nxDomain = true;
                length = w.Finish(RcodeNxDomain, out truncated);
                return DnsOutcome.Answer;
            }
        }
        else if (names.Resolve(net.Name, name, out uint[] addresses))
        {
            if (type is TypeA or TypeAny)
                foreach (uint a in addresses) w.AddA(a);
            length = w.Finish(RcodeNoError, out truncated);
            return DnsOutcome.Answer;
        }
        if (net.Forwards) return DnsOutcome.Forward;
        nxDomain = true;
        length = w.Finish(RcodeNxDomain, out truncated);
        return DnsOutcome.Answer;
    }

    /// <summary>SERVFAIL for <paramref name="query"/> (already checked by <see cref="Answer"/>): header and question only.</summary>
    public static int ServFail(ReadOnlySpan<byte> query, Span<byte> answer)
    {
        // The question is copied as it came: its end is found by walking the labels (a pointer ends a name), bounded by the message.
        int end = HeaderLength;
        while (end < query.Length)
        {
            byte l = query[end];
            if (l == 0) { end++; break; }
            if ((l & 0xC0) == 0xC0) { end += 2; break; }
            end += 1 + l;
        }
        end += 4;
        if (end > query.Length || end > answer.Length) end = HeaderLength;
        query[..end].CopyTo(answer);
        answer[2] = (byte)(0x80 | (query[2] & 0x01)); // QR, RD as asked
        answer[3] = 0x80 | RcodeServFail;             // RA
        BinaryPrimitives.WriteUInt16BigEndian(answer[4..], (ushort)(end > HeaderLength ? 1 : 0));
        answer[6..12].Clear();
        return end;
    }

    /// <summary>The header check of step 1.</summary>
    public static bool LooksLikeQuery(ReadOnlySpan<byte> m) =>
        m.Length >= HeaderLength + 5
        && (m[2] & 0xF8) == 0                                   // QR = 0, opcode QUERY
        && BinaryPrimitives.ReadUInt16BigEndian(m[4..]) == 1    // one question
        && BinaryPrimitives.ReadUInt32BigEndian(m[6..]) == 0    // no answers, no authority
        && BinaryPrimitives.ReadUInt16BigEndian(m[10..]) <= 2;  // OPT (and a TSIG/cookie at most)

    // d.c.b.a.in-addr.arpa → a.b.c.d
    private static bool TryReverse(string[] labels, out uint address)
    {
        address = 0;
        if (labels.Length != 6 || !labels[4].Equals("in-addr", StringComparison.OrdinalIgnoreCase) || !labels[5].Equals("arpa", StringComparison.OrdinalIgnoreCase))
            return false;
        for (int i = 3; i >= 0; i--)
        {
            if (!byte.TryParse(labels[i], System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out byte b)) return false;
            address = address << 8 | b;
        }
        return true;
    }

    /// <summary>Writes an answer: header and question at once, records while they fit, then the counts.</summary>
    private ref struct Writer
    {
        private readonly Span<byte> _b;
        private readonly bool _ra, _edns;
        private int _pos, _answers;
        private bool _truncated;
        private const int OptLength = 11;

        public readonly bool Fits => _pos > 0;

        public Writer(Span<byte> b, ushort id, byte queryFlags, string[] labels, ushort type, ushort cls, bool ra, bool edns)
        {
            _b = b;
            _ra = ra;
            _edns = edns;
            int need = HeaderLength + NameLength(labels) + 4 + (edns ? OptLength : 0);
            if (need > b.Length) return;
            BinaryPrimitives.WriteUInt16BigEndian(b, id);
            b[2] = (byte)(0x80 | 0x04 | (queryFlags & 0x01)); // QR, AA, RD as asked
            BinaryPrimitives.WriteUInt16BigEndian(b[4..], 1);
            b[6..12].Clear();
            _pos = HeaderLength;
            _pos += WriteName(b[_pos..], labels);
            BinaryPrimitives.WriteUInt16BigEndian(b[_pos..], type);
            BinaryPrimitives.WriteUInt16BigEndian(b[(_pos + 2)..], cls);
            _pos += 4;
        }

        private readonly int Room => _b.Length - _pos - (_edns ? OptLength : 0);

        public void AddA(uint address)
        {
            if (_truncated || Room < 16) { _truncated = true; return; }
            var r = _b[_pos..];
            BinaryPrimitives.WriteUInt16BigEndian(r, 0xC000 | HeaderLength); // the question's name
            BinaryPrimitives.WriteUInt16BigEndian(r[2..], TypeA);
            BinaryPrimitives.WriteUInt16BigEndian(r[4..], ClassIn);
            BinaryPrimitives.WriteInt32BigEndian(r[6..], Ttl);
            BinaryPrimitives.WriteUInt16BigEndian(r[10..], 4);
            BinaryPrimitives.WriteUInt32BigEndian(r[12..], address);
            _pos += 16;
            _answers++;
        }

        public void AddPtr(string name)
        {
            string[] labels = name.Split('.', StringSplitOptions.RemoveEmptyEntries);
            int rdlength = NameLength(labels);
            if (_truncated || Room < 12 + rdlength) { _truncated = true; return; }
            var r = _b[_pos..];
            BinaryPrimitives.WriteUInt16BigEndian(r, 0xC000 | HeaderLength);
            BinaryPrimitives.WriteUInt16BigEndian(r[2..], TypePtr);
            BinaryPrimitives.WriteUInt16BigEndian(r[4..], ClassIn);
            BinaryPrimitives.WriteInt32BigEndian(r[6..], Ttl);
            BinaryPrimitives.WriteUInt16BigEndian(r[10..], (ushort)rdlength);
            WriteName(r[12..], labels);
            _pos += 12 + rdlength;
            _answers++;
        }

        public int Finish(int rcode, out bool truncated)
        {
            truncated = _truncated;
            if (_truncated) _b[2] |= 0x02; // TC
            _b[3] = (byte)((_ra ? 0x80 : 0) | rcode);
            BinaryPrimitives.WriteUInt16BigEndian(_b[6..], (ushort)_answers);
            if (_edns)
            {
                var o = _b[_pos..];
                o[0] = 0; // root
                BinaryPrimitives.WriteUInt16BigEndian(o[1..], TypeOpt);
                BinaryPrimitives.WriteUInt16BigEndian(o[3..], MaxUdpAnswer);
                BinaryPrimitives.WriteUInt32BigEndian(o[5..], 0); // extended rcode, version 0, no flags
                BinaryPrimitives.WriteUInt16BigEndian(o[9..], 0);
                BinaryPrimitives.WriteUInt16BigEndian(_b[10..], 1);
                _pos += OptLength;
            }
            return _pos;
        }

        private static int NameLength(string[] labels)
        {
            int n = 1;
            foreach (string l in labels) n += 1 + l.Length;
            return n;
        }

        private static int WriteName(Span<byte> b, string[] labels)
        {
            int p = 0;
            foreach (string l in labels)
            {
                b[p++] = (byte)l.Length;
                foreach (char c in l) b[p++] = (byte)c; // the library keeps labels as one char per wire byte
            }
            b[p++] = 0;
            return p;
        }
    }
}
