using System.Collections.Concurrent;
using Microsoft.Extensions.Logging;
using UserOverlay.Cluster.Manager;
using UserOverlay.Control.Networks;
using UserOverlay.Router;

namespace UserOverlay.Cluster.Node;

/// <summary>Settings of a <see cref="ClusterAgent"/>.</summary>
public sealed record ClusterAgentOptions
{
    /// <summary>This node's id (its certificate's).</summary>
    public required string NodeId { get; init; }

    /// <summary>How long one state request waits for a change before it is asked again.</summary>
    public TimeSpan PollWait { get; init; } = TimeSpan.FromSeconds(25);

    /// <summary>How long a call to the managers may take beyond its wait (an address reservation, a release).</summary>
    public TimeSpan CallTimeout { get; init; } = TimeSpan.FromSeconds(10);

    /// <summary>First delay after a failed call to the managers; doubled per failure up to <see cref="MaxRetryDelay"/>.</summary>
    public TimeSpan RetryDelay { get; init; } = TimeSpan.FromMilliseconds(500);

    /// <summary>Longest delay between attempts while no manager answers.</summary>
    public TimeSpan MaxRetryDelay { get; init; } = TimeSpan.FromSeconds(5);

    /// <summary>
    /// An address the managers record for this node, on an endpoint this node does not have, is given back once it is
    /// at least this old here (an attach in progress holds its reservation before its endpoint exists).
    /// </summary>
    public TimeSpan OrphanGrace { get; init; } = TimeSpan.FromSeconds(30);

    /// <summary>The clock.</summary>
    public TimeProvider Time { get; init; } = TimeProvider.System;
}

/// <summary>Counters of a <see cref="ClusterAgent"/> (read any time; updated atomically).</summary>
public sealed class ClusterAgentCounters
{
    internal long StatesApplied, SyncFailures, NetworksAdopted, NetworksForgotten, AdoptRefused, Reservations, ReservationsRefused, Releases, ReleaseFailures, OrphansReleased;

    /// <summary>States received and applied.</summary>
    public long StatesAppliedCount => Interlocked.Read(ref StatesApplied);
    /// <summary>State requests that failed (no manager answered, or it refused).</summary>
    public long SyncFailuresCount => Interlocked.Read(ref SyncFailures);
    /// <summary>Cluster networks this host started serving.</summary>
    public long NetworksAdoptedCount => Interlocked.Read(ref NetworksAdopted);
    /// <summary>Cluster networks this host stopped serving (the managers removed them).</summary>
    public long NetworksForgottenCount => Interlocked.Read(ref NetworksForgotten);
    /// <summary>Cluster networks this host could not serve (a local network in the way); logged with the reason.</summary>
    public long AdoptRefusedCount => Interlocked.Read(ref AdoptRefused);
    /// <summary>Addresses reserved.</summary>
    public long ReservationsCount => Interlocked.Read(ref Reservations);
    /// <summary>Reservations refused or failed.</summary>
    public long ReservationsRefusedCount => Interlocked.Read(ref ReservationsRefused);
    /// <summary>Addresses given back.</summary>
    public long ReleasesCount => Interlocked.Read(ref Releases);
    /// <summary>Attempts to give an address back that failed (retried).</summary>
    public long ReleaseFailuresCount => Interlocked.Read(ref ReleaseFailures);
    /// <summary>Addresses the managers held for endpoints this node no longer had, given back by reconciliation.</summary>
    public long OrphansReleasedCount => Interlocked.Read(ref OrphansReleased);
}

/// <summary>
/// A node's side of the cluster: keeps the host's <see cref="NetworkManager"/> in step with the managers' state, and is
/// the manager's <see cref="IAddressAuthority"/> for the cluster's networks.
/// <list type="bullet">
/// <item>Sync: asks the managers for their state (<see cref="IClusterApi.GetStateAsync"/>, a long poll from the revision
/// it holds) and applies it: a cluster network this host does not serve is adopted
/// (<see cref="NetworkManager.AdoptNetwork"/>), one the managers removed is forgotten, and
/// <see cref="StateApplied"/> tells the daemon, which sets keys and gossip peers from it.</item>
/// <item>Addresses: <see cref="Reserve"/> asks the managers (so no address is handed out twice across hosts);
/// <see cref="Release"/> queues the release, sent at once and retried until a manager takes it; and every state brings
/// this node's allocations, so one the node no longer uses (a release lost in a crash) is given back.</item>
/// <item>Outage: while no manager answers, the host keeps forwarding with what it has (its networks are in its own
/// store); new attaches to cluster networks fail with <see cref="ControlErrorCodes.Unavailable"/>; once a manager
/// answers, one state brings the node up to date.</item>
/// </list>
/// </summary>
public sealed partial class ClusterAgent : IAddressAuthority, IAsyncDisposable
{
    private readonly IClusterApi _api;
    private readonly NetworkManager _networks;
    private readonly ClusterAgentOptions _options;
    private readonly ILogger _log;
    private readonly CancellationTokenSource _stop = new();
    private readonly ConcurrentDictionary<(string Network, string Endpoint), byte> _releases = new();
    private readonly ConcurrentDictionary<string, DateTimeOffset> _reservedAt = new(StringComparer.Ordinal);
    private readonly SemaphoreSlim _releaseSignal = new(0);
    private readonly TaskCompletionSource _firstState = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly Lock _applyLock = new();
    private Task? _syncLoop, _releaseLoop;
    private ClusterState? _state;
    private volatile string? _lastError;
    private volatile bool _connected;

    /// <summary>An agent for this node; nothing runs until <see cref="Start"/>.</summary>
    public ClusterAgent(IClusterApi api, NetworkManager networks, ClusterAgentOptions options, ILogger logger)
    {
        _api = api;
        _networks = networks;
        _options = options;
        _log = logger;
    }

    /// <summary>
    /// Raised when a state arrives, before its networks are applied (on the agent's thread): the daemon sets the keys
    /// here, so an encrypted network has its key when it is adopted. An exception is logged and the state applied anyway.
    /// </summary>
    public event Action<ClusterState>? StateReceived;

    /// <summary>Raised after a state was applied (on the agent's thread): nodes and peers for the daemon.</summary>
    public event Action<ClusterState>? StateApplied;

    /// <summary>The last state received (null before the first).</summary>
    public ClusterState? State => Volatile.Read(ref _state);

    /// <summary>Whether the last request to the managers succeeded.</summary>
    public bool Connected => _connected;

    /// <summary>Why the last request failed (null when it did not).</summary>
    public string? LastError => _lastError;

    /// <summary>Counters.</summary>
    public ClusterAgentCounters Counters { get; } = new();

    /// <summary>This node's id.</summary>
    public string NodeId => _options.NodeId;

    /// <summary>Whom the agent talks to.</summary>
    public string Peer => _api.Peer;

    /// <summary>Starts syncing; the agent becomes the network manager's address authority with its first state (or here).</summary>
    public void Start()
    {
        _networks.AddressAuthority = this;
        _syncLoop = Task.Run(() => SyncLoopAsync(_stop.Token));
        _releaseLoop = Task.Run(() => ReleaseLoopAsync(_stop.Token));
    }

    /// <summary>Completes once the first state has been applied, or fails with the last error after <paramref name="timeout"/>.</summary>
    public async Task WaitForFirstStateAsync(TimeSpan timeout, CancellationToken cancellationToken = default)
    {
        try { await _firstState.Task.WaitAsync(timeout, cancellationToken).ConfigureAwait(false); }
        catch (TimeoutException)
        {
            throw new ControlException(ControlErrorCodes.Unavailable,
                $"no state from {_api.Peer} within {timeout.TotalSeconds:0} s{(_lastError is { } e ? ": " + e : "")}", "manager");
        }
    }

    /// <summary>Fetches the state now (no waiting for a change) and applies it; for tests and for a command that must see a change at once.</summary>
    public async Task SyncNowAsync(CancellationToken cancellationToken = default)
    {
        var state = await _api.GetStateAsync(-1, TimeSpan.Zero, cancellationToken).ConfigureAwait(false);
        Apply(state);
    }

    private async Task SyncLoopAsync(CancellationToken stop)
    {
        TimeSpan delay = _options.RetryDelay;
        while (!stop.IsCancellationRequested)
        {
            try
            {
                long after = State?.Revision ?? -1;
                using var call = CancellationTokenSource.CreateLinkedTokenSource(stop);
                call.CancelAfter(_options.PollWait + _options.CallTimeout);
                var state = await _api.GetStateAsync(after, _options.PollWait, call.Token).ConfigureAwait(false);
                if (state.Revision != after || State is null) Apply(state);
                _connected = true;
                _lastError = null;
                delay = _options.RetryDelay;
            }
            catch (OperationCanceledException) when (stop.IsCancellationRequested) { return; }
            catch (Exception e) when (e is not OutOfMemoryException)
            {
                Interlocked.Increment(ref Counters.SyncFailures);
                string message = e is OperationCanceledException ? $"{_api.Peer} did not answer within {(_options.PollWait + _options.CallTimeout).TotalSeconds:0} s" : e.Message;
                if (_connected || _lastError is null) LogSyncFailed(message);
                _connected = false;
                _lastError = message;
                try { await Task.Delay(delay, _options.Time, stop).ConfigureAwait(false); }
                catch (OperationCanceledException) { return; }
                delay = TimeSpan.FromTicks(Math.Min(delay.Ticks * 2, _options.MaxRetryDelay.Ticks));
            }
        }
    }

    /// <summary>Applies one state to the host (serialised: the sync loop and <see cref="SyncNowAsync"/> may both call it).</summary>
    private void Apply(ClusterState state)
    {
        lock (_applyLock)
        {
            try { StateReceived?.Invoke(state); }
            catch (Exception e) when (e is not OutOfMemoryException) { LogAdoptFailed("(keys)", e.Message); }
            var wanted = state.Networks.ToDictionary(n => n.Id, StringComparer.Ordinal);
            var local = _networks.ListNetworks().Where(n => n.Scope == NetworkManager.SwarmScope).ToDictionary(n => n.Id, StringComparer.Ordinal);
            foreach (var (id, def) in local)
            {
                if (wanted.ContainsKey(id)) continue;
                try
                {
                    var detached = _networks.ForgetNetwork(id);
                    Interlocked.Increment(ref Counters.NetworksForgotten);
                    LogNetworkForgotten(def.Name, detached.Count);
                }
                catch (Exception e) when (e is not OutOfMemoryException) { LogAdoptFailed(def.Name, e.Message); }
            }
            foreach (var def in state.Networks)
            {
                if (local.ContainsKey(def.Id)) continue;
                try
                {
                    _networks.AdoptNetwork(def);
                    Interlocked.Increment(ref Counters.NetworksAdopted);
                    LogNetworkAdopted(def.Name, def.Vni, def.Subnet.ToString());
                }
                catch (Exception e) when (e is not OutOfMemoryException)
                {
                    Interlocked.Increment(ref Counters.AdoptRefused);
                    LogAdoptFailed(def.Name, e.Message);
                }
            }
            ReconcileAllocations(state);
            Volatile.Write(ref _state, state);
            if (!_stop.IsCancellationRequested) _networks.AddressAuthority = this;
            Interlocked.Increment(ref Counters.StatesApplied);
        }
        try { StateApplied?.Invoke(state); }
        catch (Exception e) when (e is not OutOfMemoryException) { LogAdoptFailed("(keys and peers)", e.Message); }
        _firstState.TrySetResult();
    }

    // The managers' allocations for this node whose endpoint this node does not have: given back (after a grace, so an
    // attach in progress keeps its address).
    private void ReconcileAllocations(ClusterState state)
    {
        var now = _options.Time.GetUtcNow();
        var present = new HashSet<(string, string)>();
        foreach (var def in _networks.ListNetworks().Where(n => n.Scope == NetworkManager.SwarmScope))
            foreach (var ep in _networks.GetEndpoints(def.Id)) present.Add((def.Id, ep.Id));
        foreach (var a in state.Allocations)
        {
            if (present.Contains((a.NetworkId, a.EndpointId))) continue;
            if (_reservedAt.TryGetValue(a.EndpointId, out var at) && now - at < _options.OrphanGrace) continue;
            if (_releases.TryAdd((a.NetworkId, a.EndpointId), 0))
            {
                Interlocked.Increment(ref Counters.OrphansReleased);
                LogOrphan(VtepEndpoint.FormatAddress(a.Address), a.Name);
            }
        }
        foreach (var id in _reservedAt.Where(kv => now - kv.Value >= _options.OrphanGrace).Select(kv => kv.Key).ToList()) _reservedAt.TryRemove(id, out _);
        if (!_releases.IsEmpty) _releaseSignal.Release();
    }

    /// <inheritdoc/>
    public AddressReservation Reserve(NetworkDefinition network, string endpointId, string name, uint? address, MacAddress? mac)
    {
        _reservedAt[endpointId] = _options.Time.GetUtcNow();
        var request = new AllocationRequest
        {
            Network = network.Id,
            NodeId = _options.NodeId,
            EndpointId = endpointId,
            Name = name,
            Address = address is uint a ? VtepEndpoint.FormatAddress(a) : null,
            Mac = mac?.ToString(),
        };
        try
        {
            using var timeout = CancellationTokenSource.CreateLinkedTokenSource(_stop.Token);
            timeout.CancelAfter(_options.CallTimeout);
            // NetworkManager calls this synchronously under its lock: the call is bounded by CallTimeout.
            var allocation = Task.Run(() => _api.AllocateAsync(request, timeout.Token)).GetAwaiter().GetResult();
            Interlocked.Increment(ref Counters.Reservations);
            return new AddressReservation(allocation.Address, allocation.Mac);
        }
        catch (ControlException)
        {
            Interlocked.Increment(ref Counters.ReservationsRefused);
            _reservedAt.TryRemove(endpointId, out _);
            throw;
        }
        catch (OperationCanceledException)
        {
            Interlocked.Increment(ref Counters.ReservationsRefused);
            // The request may have been applied: give it back (a repeated release of nothing is harmless).
            Release(network, endpointId);
            throw new ControlException(ControlErrorCodes.Unavailable,
                $"network: {_api.Peer} did not reserve an address on '{network.Name}' within {_options.CallTimeout.TotalSeconds:0} s; retry once a manager answers", "network");
        }
    }

    /// <inheritdoc/>
    public void Release(NetworkDefinition network, string endpointId)
    {
        _reservedAt.TryRemove(endpointId, out _);
        _releases.TryAdd((network.Id, endpointId), 0);
        _releaseSignal.Release();
    }

    /// <summary>Releases not yet taken by a manager (a count, for status).</summary>
    public int PendingReleases => _releases.Count;

    private async Task ReleaseLoopAsync(CancellationToken stop)
    {
        while (!stop.IsCancellationRequested)
        {
            try { await _releaseSignal.WaitAsync(_options.MaxRetryDelay, stop).ConfigureAwait(false); }
            catch (OperationCanceledException) { return; }
            foreach (var key in _releases.Keys.ToList())
            {
                try
                {
                    using var timeout = CancellationTokenSource.CreateLinkedTokenSource(stop);
                    timeout.CancelAfter(_options.CallTimeout);
                    await _api.ReleaseAsync(new ReleaseRequest(key.Network, key.Endpoint), timeout.Token).ConfigureAwait(false);
                    _releases.TryRemove(key, out _);
                    Interlocked.Increment(ref Counters.Releases);
                }
                catch (OperationCanceledException) when (stop.IsCancellationRequested) { return; }
                catch (ControlException e) when (e.Code == ControlErrorCodes.NotFound)
                {
                    _releases.TryRemove(key, out _); // the network (or this node) is gone, and its addresses with it
                }
                catch (Exception e) when (e is not OutOfMemoryException)
                {
                    Interlocked.Increment(ref Counters.ReleaseFailures);
                    _lastError = e.Message;
                    break; // the managers are away: wait for the next round
                }
            }
        }
    }

    /// <summary>Stops syncing; the host keeps its networks (and the manager its authority, now refusing with Unavailable).</summary>
    public async ValueTask DisposeAsync()
    {
        if (_stop.IsCancellationRequested) return;
        if (_networks.AddressAuthority == this) _networks.AddressAuthority = null;
        await _stop.CancelAsync().ConfigureAwait(false);
        foreach (var t in new[] { _syncLoop, _releaseLoop })
            if (t is not null) await t.ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
        _stop.Dispose();
        _releaseSignal.Dispose();
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "cluster: cannot reach the managers: {Reason}; forwarding goes on with the last known state")]
    private partial void LogSyncFailed(string reason);

    [LoggerMessage(Level = LogLevel.Information, Message = "cluster: serving network '{Name}' (VNI {Vni}, {Subnet})")]
    private partial void LogNetworkAdopted(string name, uint vni, string subnet);

    [LoggerMessage(Level = LogLevel.Information, Message = "cluster: network '{Name}' was removed by the managers; {Endpoints} local endpoint(s) detached")]
    private partial void LogNetworkForgotten(string name, int endpoints);

    [LoggerMessage(Level = LogLevel.Warning, Message = "cluster: cannot serve network '{Name}': {Reason}")]
    private partial void LogAdoptFailed(string name, string reason);

    [LoggerMessage(Level = LogLevel.Information, Message = "cluster: giving back {Address} ('{Name}'): the managers hold it for this node, which no longer has that endpoint")]
    private partial void LogOrphan(string address, string name);
}
