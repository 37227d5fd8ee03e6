using System.Buffers;
using System.Buffers.Binary;
using System.Collections.Frozen;
using System.Net;
using System.Security.Cryptography;

namespace UserOverlay.Crypto;

/// <summary>
/// The ESP security association database of one host: per (network key id, peer VTEP) an outbound SA for the current
/// epoch, derived from the primary of the id's <see cref="NetworkKeyRing"/>, and inbound SAs for the neighbouring
/// epochs of every key of the ring, all derived with <see cref="EspKeyDerivation"/>, rotated by <see cref="Tick"/>,
/// and looked up by SPI on receive. When a ring changes, the SAs of the keys it keeps stay as they are (sequence
/// numbers, replay windows), those of added keys are built and those of removed keys retired.
/// </summary>
/// <remarks>
/// <para><b>Data path</b> (any thread, allocation-free, lock-free lookups): <see cref="EspPeer.Seal"/> on a handle from
/// <see cref="AddPeer"/>; <see cref="Open"/> for every received ESP packet. Readers see an immutable SPI → SA snapshot
/// (a <see cref="FrozenDictionary{TKey, TValue}"/>) that control operations replace; retired SAs are disposed one
/// <see cref="Tick"/> later, so a packet in flight through an old SA still completes.</para>
/// <para><b>Control path</b> (serialised by an internal lock; any thread): <see cref="AddPeer"/>,
/// <see cref="RemovePeer"/>, <see cref="SetPeers"/>, <see cref="Tick"/>, <see cref="Describe"/>. The router calls
/// <see cref="Tick"/> from a timer about once a second: it moves SAs to new epochs at boundaries, rotates early when
/// an SA has used <see cref="EspOptions.RekeyAfterPackets"/> numbers, re-reads the key rings from the
/// <see cref="INetworkKeySource"/> (and follows their changes), retries failed reservations and frees retired SAs. It may block on the
/// <see cref="ISequenceStore"/> (an fsync), so do not call it from a pipeline thread.</para>
/// </remarks>
public sealed class EspSecurityDatabase : IDisposable
{
    private readonly Lock _control = new();
    private readonly Dictionary<(string KeyId, IPAddress Peer), EspPeer> _peers = [];
    private readonly List<(SecurityAssociation Sa, long Tick)> _retired = [];
    private readonly List<(EspPeer Peer, OutboundSa Next, OutboundSa? Old, NetworkKey Key)> _pending = [];
    private readonly INetworkKeySource _keys;
    private readonly ISequenceStore _store;
    private FrozenDictionary<uint, InboundSa[]> _inbound = FrozenDictionary<uint, InboundSa[]>.Empty;
    private FrozenDictionary<(string KeyId, IPAddress Peer), EspPeer> _peerSnapshot = FrozenDictionary<(string KeyId, IPAddress Peer), EspPeer>.Empty;
    private HashSet<uint> _collidingSpis = [];
    private IReadOnlyList<SpiCollision> _collisions = [];
    private long _ticks;
    private DateTimeOffset _now;
    private DateTimeOffset _lastReplaySave;
    private bool _disposed;

    /// <summary>Creates an empty database for the host whose VTEP address is <paramref name="localVtep"/>.</summary>
    /// <param name="localVtep">This host's underlay address: the outer source of what it seals, the destination of what it opens.</param>
    /// <param name="keys">Network keys by id.</param>
    /// <param name="options">Settings; <see cref="EspOptions.SequenceStore"/> is required.</param>
    /// <param name="now">Current time (the router's clock; tests pass any time).</param>
    public EspSecurityDatabase(IPAddress localVtep, INetworkKeySource keys, EspOptions options, DateTimeOffset now)
    {
        ArgumentNullException.ThrowIfNull(localVtep);
        ArgumentNullException.ThrowIfNull(keys);
        ArgumentNullException.ThrowIfNull(options);
        options.Validate();
        _store = options.SequenceStore ?? throw new ArgumentException(
            "EspOptions.SequenceStore is required: without it a restart could reuse GCM nonces (use FileSequenceStore).", nameof(options));
        LocalVtep = EspKeyDerivation.Normalize(localVtep);
        _keys = keys;
        Options = options;
        _now = now;
        CurrentEpoch = EspEpoch.Of(now, options.RekeyInterval);
    }

    /// <summary>This host's VTEP address.</summary>
    public IPAddress LocalVtep { get; }

    /// <summary>Settings.</summary>
    public EspOptions Options { get; }

    /// <summary>Drop and event counters.</summary>
    public EspCounters Counters { get; } = new();

    /// <summary>Epoch of the time given to the last <see cref="Tick"/> (or the constructor).</summary>
    public long CurrentEpoch { get; private set; }

    /// <summary>SPIs currently shared by more than one inbound SA, and by which.</summary>
    public IReadOnlyList<SpiCollision> SpiCollisions => Volatile.Read(ref _collisions);

    /// <summary>Number of inbound SAs in the lookup snapshot.</summary>
    public int InboundCount
    {
        get
        {
            int n = 0;
            foreach (var kv in Volatile.Read(ref _inbound))
                n += kv.Value.Length;
            return n;
        }
    }

    /// <summary>
    /// Adds a peer VTEP for a network key (idempotent) and builds its SAs at once, so the returned handle can seal
    /// immediately if the key exists. Keep the handle; it stays valid across rotations until <see cref="RemovePeer"/>.
    /// </summary>
    public EspPeer AddPeer(string keyId, IPAddress peer)
    {
        ArgumentException.ThrowIfNullOrEmpty(keyId);
        peer = EspKeyDerivation.Normalize(peer);
        lock (_control)
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            if (_peers.TryGetValue((keyId, peer), out EspPeer? existing))
                return existing;
            var p = new EspPeer(keyId, peer, Counters);
            _peers.Add((keyId, peer), p);
            Refresh(p, CurrentEpoch);
            CommitPending();
            PublishInbound();
            return p;
        }
    }

    /// <summary>The handle for (key, peer), or null if the peer was not added. Lock-free (an immutable snapshot) and
    /// allocation-free for IPv4 and plain IPv6 addresses; still, keeping the handle is cheaper on the data path.</summary>
    public EspPeer? FindPeer(string keyId, IPAddress peer) =>
        Volatile.Read(ref _peerSnapshot).GetValueOrDefault((keyId, EspKeyDerivation.Normalize(peer)));

    /// <summary>Removes a peer: its handle stops sealing at once (<see cref="EspSealStatus.NoSa"/>) and its inbound SAs leave the lookup.</summary>
    public bool RemovePeer(string keyId, IPAddress peer)
    {
        peer = EspKeyDerivation.Normalize(peer);
        lock (_control)
        {
            if (!_peers.Remove((keyId, peer), out EspPeer? p))
                return false;
            p.IsRemoved = true;
            RetireAll(p);
            PublishInbound();
            return true;
        }
    }

    /// <summary>Makes the peers of <paramref name="keyId"/> exactly <paramref name="peers"/> (membership changes). Returns the handles.</summary>
    public IReadOnlyList<EspPeer> SetPeers(string keyId, IEnumerable<IPAddress> peers)
    {
        var wanted = new HashSet<IPAddress>(peers.Select(EspKeyDerivation.Normalize));
        wanted.Remove(LocalVtep);
        lock (_control)
        {
            foreach (var (key, p) in _peers.ToArray())
            {
                if (key.KeyId == keyId && !wanted.Contains(key.Peer))
                {
                    _peers.Remove(key);
                    p.IsRemoved = true;
                    RetireAll(p);
                }
            }
            var result = new List<EspPeer>();
            foreach (IPAddress a in wanted)
            {
                if (!_peers.TryGetValue((keyId, a), out EspPeer? p))
                {
                    p = new EspPeer(keyId, a, Counters);
                    _peers.Add((keyId, a), p);
                    Refresh(p, CurrentEpoch);
                }
                result.Add(p);
            }
            CommitPending();
            PublishInbound();
            return result;
        }
    }

    /// <summary>
    /// The rotation driver; call about once a second with the current time (and after the key source changed).
    /// See the class remarks for what it does. Time may be given in any order; epochs of outbound SAs never go back.
    /// </summary>
    public void Tick(DateTimeOffset now)
    {
        lock (_control)
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            _ticks++;
            _now = now;
            long epoch = EspEpoch.Of(now, Options.RekeyInterval);
            CurrentEpoch = epoch;

            // Free SAs retired before the previous tick: no data-path thread can still be inside them.
            for (int i = _retired.Count - 1; i >= 0; i--)
            {
                if (_retired[i].Tick < _ticks - 1)
                {
                    _retired[i].Sa.Dispose();
                    _retired.RemoveAt(i);
                }
            }

            bool changed = false;
            foreach (EspPeer p in _peers.Values)
                changed |= Refresh(p, epoch);
            CommitPending();
            if (changed)
                PublishInbound();
            SaveReplayState(now);

            try
            {
                // Outbound epochs are never below the clock's epoch, so older records are dead.
                long floor = epoch - Options.EpochSpread;
                if (floor > _store.Floor)
                    _store.Prune(floor);
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                Counters.ReservationFailed(e);
            }
        }
    }

    /// <summary>
    /// Opens a received ESP packet (it fills <paramref name="espPacket"/>, SPI to ICV): finds the inbound SA by SPI in
    /// the current snapshot and calls <see cref="InboundSa.Open"/>. Drops are counted by reason. On
    /// <see cref="EspOpenStatus.Ok"/>, <paramref name="sa"/> is the SA that authenticated it: the router must check that
    /// the VXLAN VNI inside belongs to a network keyed by <see cref="SecurityAssociation.KeyId"/> (and may check the
    /// outer source against <see cref="SecurityAssociation.Source"/>). Thread-safe and allocation-free (except for
    /// SPIs shared by several SAs, which borrow a pooled copy for trial decryption).
    /// </summary>
    public EspOpenStatus Open(Span<byte> espPacket, out int payloadOffset, out int payloadLength, out byte nextHeader, out InboundSa? sa)
    {
        payloadOffset = 0;
        payloadLength = 0;
        nextHeader = 0;
        sa = null;
        EspOpenStatus status;
        if (espPacket.Length < Esp.MinPacketLength)
        {
            status = EspOpenStatus.Truncated;
        }
        else
        {
            uint spi = BinaryPrimitives.ReadUInt32BigEndian(espPacket);
            if (!Volatile.Read(ref _inbound).TryGetValue(spi, out InboundSa[]? candidates))
            {
                status = EspOpenStatus.UnknownSpi;
            }
            else if (candidates.Length == 1)
            {
                status = candidates[0].Open(espPacket, out payloadOffset, out payloadLength, out nextHeader);
                if (status == EspOpenStatus.Ok)
                    sa = candidates[0];
            }
            else
            {
                status = OpenAmbiguous(candidates, espPacket, out payloadOffset, out payloadLength, out nextHeader, out sa);
            }
        }
        if (status != EspOpenStatus.Ok)
            Counters.Count(status);
        return status;
    }

    /// <summary>
    /// Seals for (key, peer) by lookup: the convenience form of <see cref="EspPeer.Seal"/> for callers without a handle.
    /// A peer that was never added gets <see cref="EspSealStatus.NoSa"/> (counted): no SA, no send.
    /// </summary>
    public EspSealStatus Seal(string keyId, IPAddress peer, Span<byte> buffer, int payloadOffset, int payloadLength, byte nextHeader, out int espLength)
    {
        EspPeer? p = FindPeer(keyId, peer);
        if (p is null)
        {
            espLength = 0;
            Counters.Count(EspSealStatus.NoSa);
            return EspSealStatus.NoSa;
        }
        return p.Seal(buffer, payloadOffset, payloadLength, nextHeader, out espLength);
    }

    /// <summary>Describes the SAs in use now (outbound current SAs and every inbound SA), with keys, for <c>useroverlay sa</c>.</summary>
    public IReadOnlyList<EspSaDescription> Describe()
    {
        lock (_control)
        {
            var list = new List<EspSaDescription>();
            foreach (EspPeer p in _peers.Values)
            {
                if (p.CurrentOutbound is { } o)
                    list.Add(EspSaDescription.From(o, Options, current: true));
                foreach (EspPeer.KeySlot slot in p.Slots)
                    foreach (var kv in slot.Inbound.OrderBy(kv => kv.Key))
                        list.Add(EspSaDescription.From(kv.Value, Options, current: kv.Key == CurrentEpoch));
            }
            return list;
        }
    }

    /// <summary>Disposes every SA (key schedules freed, key copies zeroed).</summary>
    public void Dispose()
    {
        lock (_control)
        {
            if (_disposed)
                return;
            _disposed = true;
            foreach (EspPeer p in _peers.Values)
            {
                p.IsRemoved = true;
                RetireAll(p);
            }
            _peers.Clear();
            Volatile.Write(ref _inbound, FrozenDictionary<uint, InboundSa[]>.Empty);
            Volatile.Write(ref _peerSnapshot, FrozenDictionary<(string KeyId, IPAddress Peer), EspPeer>.Empty);
            foreach (var (sa, _) in _retired)
                sa.Dispose();
            _retired.Clear();
        }
    }

    // ----- control path internals (under _control) -----

    private bool Refresh(EspPeer p, long epoch)
    {
        bool changed = false;
        if (!_keys.TryGetRing(p.KeyId, out NetworkKeyRing? ring) || ring.Count == 0)
        {
            // No key, no SA, no send.
            changed = p.CurrentOutbound is not null || p.InboundCount > 0;
            RetireAll(p);
            return changed;
        }
        if (p.Ring is null || !p.Ring.SameAs(ring))
            changed |= ApplyRing(p, ring);

        int spread = Options.EpochSpread;
        NetworkKey primary = ring.Primary;

        // Outbound: from the primary; the clock's epoch, never going back, moving ahead early when the sequence space
        // calls for it, never below the store's floor and never further ahead than receivers accept. A new primary
        // replaces the current SA at its epoch (peers already hold the key: it joined their rings a rotation earlier).
        OutboundSa? current = p.CurrentOutbound;
        bool newPrimary = current is not null && (p.OutboundKey is null || !p.OutboundKey.SecretEquals(primary));
        long target = Math.Max(epoch, _store.Floor);
        if (current is not null)
        {
            target = Math.Max(target, current.Epoch);
            if (!newPrimary && current.NeedsRekey && current.Epoch + 1 <= epoch + spread)
                target = Math.Max(target, current.Epoch + 1);
        }
        if (current is null || current.Epoch != target || newPrimary)
        {
            OutboundSa? next = null;
            for (long e = target; next is null && e <= Math.Max(target, epoch + spread); e++)
                next = CreateOutbound(primary, p.Peer, e);
            if (next is not null)
                _pending.Add((p, next, current, primary)); // published by CommitPending once its first block is durable
        }
        else if (current.ReservedThrough <= current.LastSequence && current.ReservedThrough < current.HardLimit)
        {
            current.ReserveNow(); // retry a failed reservation
        }

        // Inbound: for every key of the ring, epochs e − spread .. e + spread.
        foreach (EspPeer.KeySlot slot in p.Slots)
        {
            for (long e = epoch - spread; e <= epoch + spread; e++)
            {
                if (!slot.Inbound.ContainsKey(e))
                {
                    slot.Inbound.Add(e, CreateInbound(slot.Key, p.Peer, e));
                    changed = true;
                }
            }
            foreach (long e in slot.Inbound.Keys.ToArray())
            {
                if (e < epoch - spread || e > epoch + spread)
                {
                    Retire(slot.Inbound[e]);
                    slot.Inbound.Remove(e);
                    changed = true;
                }
            }
        }
        return changed;
    }

    /// <summary>
    /// Follows a new ring: the inbound SAs of keys it still holds stay exactly as they are (sequence numbers, replay
    /// windows), keys it adds get slots (filled by <see cref="Refresh"/>), and the SAs of keys it dropped are retired.
    /// The outbound SA is retired at once only if its key left the ring; otherwise it seals until the new primary's SA
    /// is committed.
    /// </summary>
    private bool ApplyRing(EspPeer p, NetworkKeyRing ring)
    {
        bool changed = false;
        var slots = new List<EspPeer.KeySlot>(ring.Count);
        foreach (NetworkKey key in ring.All)
        {
            EspPeer.KeySlot? slot = p.Slots.Find(s => s.Key.SecretEquals(key));
            slots.Add(slot ?? new EspPeer.KeySlot(key));
        }
        foreach (EspPeer.KeySlot old in p.Slots)
        {
            if (slots.Contains(old))
                continue;
            foreach (InboundSa sa in old.Inbound.Values)
                Retire(sa);
            changed |= old.Inbound.Count > 0;
        }
        p.Slots.Clear();
        p.Slots.AddRange(slots);
        if (p.CurrentOutbound is { } o && (p.OutboundKey is null || !ring.Contains(p.OutboundKey)))
        {
            p.SetCurrent(null);
            p.OutboundKey = null;
            Retire(o);
            changed = true;
        }
        p.Ring = ring;
        return changed;
    }

    private InboundSa CreateInbound(NetworkKey key, IPAddress peer, long epoch)
    {
        EspSaParameters sp = EspKeyDerivation.Derive(key, peer, LocalVtep, epoch, Options.ExtendedSequenceNumbers) with
        {
            Backend = Options.Backend,
            CipherLanes = Options.CipherLanes,
        };
        try
        {
            var inbound = new InboundSa(sp);
            ulong saved = _store.GetReserved(SecurityAssociation.ComputeRecordId(sp.Key, sp.Salt, sp.Spi, sp.ExtendedSequenceNumbers));
            if (saved > 0)
            {
                inbound.RaiseFloor(saved);
                inbound.PersistedTop = saved;
            }
            return inbound;
        }
        finally
        {
            CryptographicOperations.ZeroMemory(sp.Key);
        }
    }

    private OutboundSa? CreateOutbound(NetworkKey key, IPAddress peer, long epoch)
    {
        EspSaParameters sp = EspKeyDerivation.Derive(key, LocalVtep, peer, epoch, Options.ExtendedSequenceNumbers) with
        {
            Backend = Options.Backend,
            CipherLanes = Options.CipherLanes,
        };
        try
        {
            string id = SecurityAssociation.ComputeRecordId(sp.Key, sp.Salt, sp.Spi, sp.ExtendedSequenceNumbers);
            ulong last = _store.GetReserved(id);
            ulong hard = sp.ExtendedSequenceNumbers ? long.MaxValue : Esp.MaxSequence32;
            if (last >= Options.EffectiveRekeyAfter || last >= hard)
                return null; // this epoch's key already used its share in an earlier run: use the next one
            var reservation = new OutboundSa.Reservation(_store, id, epoch, Options.SequenceReservationBlock, Counters);
            return new OutboundSa(sp, last, Options.EffectiveRekeyAfter, reservation);
        }
        finally
        {
            CryptographicOperations.ZeroMemory(sp.Key);
        }
    }

    /// <summary>
    /// Makes the first sequence block of every outbound SA created since the last call durable in one store write,
    /// then publishes them (an SA never seals before its numbers are reserved). If the store fails, a peer keeps its
    /// old SA when it has one; a peer without one gets the new SA, which refuses to seal until Tick's retry succeeds.
    /// </summary>
    private void CommitPending()
    {
        if (_pending.Count == 0)
            return;
        var blocks = new List<SequenceReservation>(_pending.Count);
        foreach (var (_, next, _, _) in _pending)
            blocks.Add(next.Reserver!.FirstBlock());
        bool durable = true;
        try
        {
            _store.ReserveMany(blocks);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            Counters.ReservationFailed(e);
            durable = false;
        }
        for (int i = 0; i < _pending.Count; i++)
        {
            var (p, next, old, key) = _pending[i];
            if (durable)
                next.Reserver!.Completed(blocks[i].Through);
            else if (old is not null)
            {
                next.Dispose();
                continue;
            }
            if (p.IsRemoved || (p.CurrentOutbound != old))
            {
                next.Dispose(); // the peer went away or changed meanwhile
                continue;
            }
            p.SetCurrent(next);
            p.OutboundKey = key;
            if (old is not null)
            {
                Retire(old);
                Counters.Rotated();
            }
        }
        _pending.Clear();
    }

    /// <summary>Saves the highest accepted sequence number of every inbound SA that moved, in one write, at most
    /// every <see cref="EspOptions.ReplayStateSaveInterval"/>.</summary>
    private void SaveReplayState(DateTimeOffset now)
    {
        if (Options.ReplayStateSaveInterval <= TimeSpan.Zero || now - _lastReplaySave < Options.ReplayStateSaveInterval)
            return;
        _lastReplaySave = now;
        var moved = new List<(InboundSa Sa, SequenceReservation Record)>();
        foreach (EspPeer p in _peers.Values)
        {
            foreach (InboundSa sa in p.AllInbound)
            {
                ulong top = sa.HighestSequence;
                if (top > sa.PersistedTop)
                    moved.Add((sa, new SequenceReservation(sa.RecordId, sa.Epoch, top)));
            }
        }
        if (moved.Count == 0)
            return;
        try
        {
            _store.ReserveMany(moved.Select(m => m.Record).ToList());
            foreach (var (sa, record) in moved)
                sa.PersistedTop = record.Through;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            Counters.ReservationFailed(e);
        }
    }

    private void RetireAll(EspPeer p)
    {
        if (p.CurrentOutbound is { } o)
        {
            p.SetCurrent(null);
            Retire(o);
        }
        foreach (InboundSa i in p.AllInbound)
            Retire(i);
        p.Slots.Clear();
        p.Ring = null;
        p.OutboundKey = null;
    }

    private void Retire(SecurityAssociation sa) => _retired.Add((sa, _ticks));

    private void PublishInbound()
    {
        Volatile.Write(ref _peerSnapshot, _peers.ToFrozenDictionary());
        var map = new Dictionary<uint, List<InboundSa>>();
        foreach (EspPeer p in _peers.Values)
        {
            foreach (InboundSa sa in p.AllInbound)
            {
                if (!map.TryGetValue(sa.Spi, out List<InboundSa>? list))
                    map[sa.Spi] = list = new List<InboundSa>(1);
                list.Add(sa);
            }
        }
        var collisions = new List<SpiCollision>();
        var colliding = new HashSet<uint>();
        foreach (var (spi, list) in map)
        {
            if (list.Count < 2)
                continue;
            colliding.Add(spi);
            collisions.Add(new SpiCollision(spi, list.Select(s => s.ToString()).ToArray()));
            if (!_collidingSpis.Contains(spi))
                Counters.SpiCollision();
        }
        _collidingSpis = colliding;
        Volatile.Write(ref _collisions, collisions);
        Counters.CurrentSpiCollisions = collisions.Count;
        Volatile.Write(ref _inbound, map.ToFrozenDictionary(kv => kv.Key, kv => kv.Value.ToArray()));
    }

    /// <summary>Test hook: installs an extra inbound SA with chosen parameters (to provoke SPI collisions).</summary>
    internal void InjectInbound(string keyId, IPAddress peer, long epochSlot, InboundSa sa)
    {
        lock (_control)
        {
            EspPeer p = _peers[(keyId, EspKeyDerivation.Normalize(peer))];
            p.Slots[0].Inbound[epochSlot] = sa;
            PublishInbound();
        }
    }

    private static EspOpenStatus OpenAmbiguous(InboundSa[] candidates, Span<byte> espPacket,
        out int payloadOffset, out int payloadLength, out byte nextHeader, out InboundSa? sa)
    {
        // Several SAs share this SPI: try each (a wrong key fails authentication). Every backend zeroes the buffer when
        // authentication fails, so keep a pooled copy of the original to restore between attempts.
        byte[] original = ArrayPool<byte>.Shared.Rent(espPacket.Length);
        try
        {
            espPacket.CopyTo(original);
            EspOpenStatus result = EspOpenStatus.AuthenticationFailed;
            for (int i = 0; i < candidates.Length; i++)
            {
                if (i > 0)
                    original.AsSpan(0, espPacket.Length).CopyTo(espPacket);
                EspOpenStatus s = candidates[i].Open(espPacket, out payloadOffset, out payloadLength, out nextHeader);
                if (s == EspOpenStatus.Ok || s == EspOpenStatus.BadPadding)
                {
                    sa = s == EspOpenStatus.Ok ? candidates[i] : null;
                    return s;
                }
                if (s != EspOpenStatus.AuthenticationFailed && result == EspOpenStatus.AuthenticationFailed)
                    result = s;
            }
            payloadOffset = payloadLength = 0;
            nextHeader = 0;
            sa = null;
            return result;
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(original, clearArray: true);
        }
    }
}
