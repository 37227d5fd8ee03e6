using System.Numerics;
using UserOverlay.Control.Networks;
using UserOverlay.Router;

namespace UserOverlay.Control.Ipam;

/// <summary>
/// The IPv4 addresses of one network: a bitmap over the whole subnet, one bit per address (a /16 is 8 KiB, the
/// largest allowed subnet, a /8, is 2 MiB).
/// <list type="bullet">
/// <item>Reserved addresses — the network and broadcast addresses, the gateway and the aux addresses — are set in the
/// bitmap from the start and are never handed out or released.</item>
/// <item><see cref="AllocateNext"/> hands out addresses of the range (the ip-range, or the subnet) sequentially, as
/// Docker's IPAM does: the search starts after the last address it handed out and wraps to the start of the range,
/// so a released address is not reused at once.</item>
/// <item><see cref="AllocateSpecific"/> takes any free address of the subnet, inside the range or not (as Docker's
/// <c>--ip</c>), and does not move the sequential cursor.</item>
/// </list>
/// Cost: <see cref="AllocateNext"/> scans 64 addresses per step, O(range/64) at worst; everything else is O(1).
/// Not thread-safe: <see cref="NetworkManager"/> calls it under its lock.
/// </summary>
public sealed class AddressPool
{
    // Bit i is address Subnet.Network + i; set = allocated or reserved.
    private readonly ulong[] _used;
    private readonly HashSet<uint> _reserved = [];
    // The allocation range as offsets into the subnet, inclusive.
    private readonly uint _first, _last;
    // Offset where the next sequential search starts.
    private uint _cursor;

    /// <summary>The smallest prefix length (largest subnet) a pool accepts.</summary>
    public const int MinPrefixLength = 8;
    /// <summary>The largest prefix length: a /30 still has two usable addresses.</summary>
    public const int MaxPrefixLength = 30;

    /// <summary>The subnet the addresses come from.</summary>
    public Ipv4Prefix Subnet { get; }

    /// <summary>The part of the subnet <see cref="AllocateNext"/> draws from (the subnet itself when no ip-range is set).</summary>
    public Ipv4Prefix Range { get; }

    /// <summary>Addresses handed out and not released (reserved addresses not counted).</summary>
    public int Count { get; private set; }

    /// <summary>How many addresses of <see cref="Range"/> <see cref="AllocateNext"/> can hand out in an empty pool.</summary>
    public int Capacity { get; }

    /// <summary>
    /// A pool over <paramref name="subnet"/> drawing sequential addresses from <paramref name="range"/> (null: the
    /// subnet), with <paramref name="reserved"/> (gateway, aux addresses; host order) never handed out. The caller has
    /// validated the arguments (<see cref="NetworkValidator"/>); a violation here is a programming error.
    /// </summary>
    public AddressPool(Ipv4Prefix subnet, Ipv4Prefix? range, IEnumerable<uint> reserved)
    {
        if (subnet.Length is < MinPrefixLength or > MaxPrefixLength)
            throw new ArgumentOutOfRangeException(nameof(subnet), $"{subnet} is not /{MinPrefixLength} to /{MaxPrefixLength}");
        var r = range ?? subnet;
        if (r.Length < subnet.Length || !subnet.Contains(r.Network))
            throw new ArgumentOutOfRangeException(nameof(range), $"{r} is not inside {subnet}");
        Subnet = subnet;
        Range = r;
        uint size = 1u << (32 - subnet.Length);
        _used = new ulong[(size + 63) / 64];
        _first = r.Network - subnet.Network;
        _last = _first + (uint)((1UL << (32 - r.Length)) - 1);
        _cursor = _first;

        Reserve(subnet.Network);
        Reserve(subnet.Network | ~subnet.Mask);
        foreach (uint a in reserved)
        {
            if (!subnet.Contains(a)) throw new ArgumentOutOfRangeException(nameof(reserved), $"{VtepEndpoint.FormatAddress(a)} is outside {subnet}");
            Reserve(a);
        }
        int reservedInRange = _reserved.Count(a => Offset(a) >= _first && Offset(a) <= _last);
        Capacity = (int)(_last - _first + 1) - reservedInRange;
    }

    /// <summary>True when <paramref name="address"/> is handed out (false for reserved and outside addresses).</summary>
    public bool IsAllocated(uint address) => Subnet.Contains(address) && IsSet(Offset(address)) && !_reserved.Contains(address);

    /// <summary>True for the network, broadcast, gateway and aux addresses.</summary>
    public bool IsReserved(uint address) => _reserved.Contains(address);

    /// <summary>
    /// Hands out the next free address of <see cref="Range"/> after the last one handed out, wrapping; false when the
    /// range is full.
    /// </summary>
    public bool TryAllocateNext(out uint address)
    {
        long found = FindClear(_cursor, _last);
        if (found < 0 && _cursor > _first) found = FindClear(_first, _cursor - 1);
        if (found < 0) { address = 0; return false; }
        uint offset = (uint)found;
        Set(offset);
        Count++;
        _cursor = offset == _last ? _first : offset + 1;
        address = Subnet.Network + offset;
        return true;
    }

    /// <summary>As <see cref="TryAllocateNext"/>, or throws <see cref="ControlErrorCodes.Exhausted"/> naming the range.</summary>
    public uint AllocateNext() =>
        TryAllocateNext(out uint a) ? a : throw new ControlException(ControlErrorCodes.Exhausted,
            $"ip: no free IPv4 address is left in {Range} (all {Capacity} are in use); disconnect an endpoint or use a larger subnet or ip-range", "ip");

    /// <summary>
    /// Takes <paramref name="address"/>, which must be inside the subnet, not reserved and free; otherwise throws
    /// (<see cref="ControlErrorCodes.InvalidArgument"/> or <see cref="ControlErrorCodes.Conflict"/>, field "ip").
    /// </summary>
    public void AllocateSpecific(uint address)
    {
        string a = VtepEndpoint.FormatAddress(address);
        if (!Subnet.Contains(address))
            throw ControlException.Invalid("ip", $"{a} is outside the network's subnet {Subnet}");
        if (NetworkOrBroadcast(Subnet, address) is { } kind)
            throw ControlException.Invalid("ip", $"{a} is the {kind} address of {Subnet}");
        if (_reserved.Contains(address))
            throw ControlException.Conflicting("ip", $"{a} is reserved on this network (its gateway or an aux address)");
        uint offset = Offset(address);
        if (IsSet(offset))
            throw ControlException.Conflicting("ip", $"{a} is already in use on this network");
        Set(offset);
        Count++;
    }

    /// <summary>Gives <paramref name="address"/> back; false (and nothing changes) when it was not handed out.</summary>
    public bool Release(uint address)
    {
        if (!IsAllocated(address)) return false;
        uint offset = Offset(address);
        _used[offset >> 6] &= ~(1UL << (int)(offset & 63));
        Count--;
        return true;
    }

    /// <summary>
    /// Makes <see cref="AllocateNext"/> continue after <paramref name="address"/>, as if it had just handed it out —
    /// for rebuilding a pool from stored endpoints. Addresses outside the range are ignored.
    /// </summary>
    public void ResumeAfter(uint address)
    {
        if (!Subnet.Contains(address)) return;
        uint offset = Offset(address);
        if (offset >= _first && offset <= _last) _cursor = offset == _last ? _first : offset + 1;
    }

    /// <summary>"network" or "broadcast" when <paramref name="address"/> is that address of <paramref name="subnet"/>, else null.</summary>
    internal static string? NetworkOrBroadcast(Ipv4Prefix subnet, uint address) =>
        address == subnet.Network ? "network" : address == (subnet.Network | ~subnet.Mask) ? "broadcast" : null;

    private uint Offset(uint address) => address - Subnet.Network;

    private bool IsSet(uint offset) => (_used[offset >> 6] & (1UL << (int)(offset & 63))) != 0;

    private void Set(uint offset) => _used[offset >> 6] |= 1UL << (int)(offset & 63);

    private void Reserve(uint address)
    {
        if (_reserved.Add(address)) Set(Offset(address));
    }

    // The lowest clear bit in [from, to] (offsets, inclusive), or -1: a word at a time.
    private long FindClear(uint from, uint to)
    {
        for (uint w = from >> 6; w <= to >> 6; w++)
        {
            ulong free = ~_used[w];
            if (w == from >> 6) free &= ulong.MaxValue << (int)(from & 63);
            if (w == to >> 6) free &= ulong.MaxValue >> (63 - (int)(to & 63));
            if (free != 0) return ((long)w << 6) + BitOperations.TrailingZeroCount(free);
        }
        return -1;
    }
}
