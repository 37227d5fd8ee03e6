using System.Net;
using System.Net.Sockets;
using System.Security.Authentication;
using System.Security.Cryptography;
using System.Text;
using DotNext.Net.Cluster;
using DotNext.Net.Cluster.Consensus.Raft;
using DotNext.Net.Cluster.Consensus.Raft.StateMachine;
using DotNext.Net.Security;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using UserOverlay.Cluster.Store;

namespace UserOverlay.Cluster.Replication.Raft;

/// <summary>
/// The managers' replicated log: one member of a Raft consensus (DotNext.Net.Cluster's <see cref="RaftCluster"/> over
/// its TCP transport, mutual TLS with the cluster's node certificates) with DotNext's persistent
/// <see cref="WriteAheadLog"/> and snapshots in <see cref="RaftLogOptions.DataDirectory"/>.
/// <para>
/// Life: the first manager calls <see cref="BootstrapAsync"/> (a one-member cluster with itself as leader); every other
/// one calls <see cref="IReplicatedLog.StartAsync"/> and waits, not voting, until a member adds it
/// (<see cref="AddMemberAsync"/>). A restarted member calls <see cref="IReplicatedLog.StartAsync"/> (or
/// <see cref="BootstrapAsync"/>, which is then the same) with the same directory and rejoins with its state.
/// </para>
/// <para>
/// Proposals and membership changes may be made on any member: a follower forwards them to the leader over the
/// forwarding channel (<see cref="RaftLogOptions.ForwardListenEndPoint"/>, the Raft port plus one by default), since
/// DotNext's TCP transport has no room for messages of ours. Each entry carries a random proposal id; the proposer
/// returns when its own member applied the entry with that id (or, on a follower that received a snapshot covering it,
/// when its log applied past the index the leader reported).
/// </para>
/// </summary>
public sealed class RaftLog : IReplicatedLog
{
    private const string MetadataId = "id";
    private const string MetadataForward = "forward";
    private static readonly TimeSpan RetryDelay = TimeSpan.FromMilliseconds(50);

    private readonly RaftLogOptions options;
    private readonly ILoggerFactory loggerFactory;
    private readonly ILogger logger;
    private readonly CancellationTokenSource lifetime = new();
    private RaftStateMachine? machine;
    private WriteAheadLog? wal;
    private EndPointConfigurationStorage? storage;
    private RaftCluster? cluster;
    private ForwardServer? server;
    private ForwardClient? client;
    private int started, disposed, leader;

    /// <summary>Checks <paramref name="options"/> (<see cref="ArgumentException"/> naming the field); touches nothing yet.</summary>
    public RaftLog(RaftLogOptions options, ILoggerFactory? loggerFactory = null)
    {
        ArgumentNullException.ThrowIfNull(options);
        options.Validate();
        this.options = options;
        this.loggerFactory = loggerFactory ?? NullLoggerFactory.Instance;
        logger = this.loggerFactory.CreateLogger<RaftLog>();
    }

    /// <inheritdoc/>
    public string Location => "raft:" + options.DataDirectory;

    /// <summary>This member's node id.</summary>
    public string MemberId => options.MemberId;

    /// <inheritdoc/>
    public bool IsLeader => Volatile.Read(ref leader) == 1;

    /// <inheritdoc/>
    public string? Leader => cluster?.Leader is { } current ? EndPointConfigurationStorage.Format(current.EndPoint) : null;

    /// <summary>The leader's node id (its address when its id is not recorded; null when there is no leader).</summary>
    public string? LeaderId => cluster?.Leader is { } current ? IdOf(current) : null;

    /// <inheritdoc/>
    public event Action<bool>? LeadershipChanged;

    /// <summary>The voters as this member knows them (empty before start and for a member not added yet).</summary>
    public IReadOnlyList<RaftMemberInfo> Members
    {
        get
        {
            if (cluster is not { } raft)
                return [];
            var list = new List<RaftMemberInfo>();
            foreach (RaftClusterMember member in raft.Members)
            {
                bool? reachable = !member.IsRemote ? true : member.Status switch
                {
                    ClusterMemberStatus.Available => true,
                    ClusterMemberStatus.Unavailable => false,
                    _ => null,
                };
                list.Add(new RaftMemberInfo(IdOf(member), EndPointConfigurationStorage.Format(member.EndPoint), member.IsLeader, reachable, !member.IsRemote));
            }
            list.Sort(static (a, b) => string.CompareOrdinal(a.Id, b.Id));
            return list;
        }
    }

    /// <summary>The index of the last entry this member applied (0 before any).</summary>
    public long LastAppliedIndex => wal?.LastAppliedIndex ?? 0;

    /// <summary>Snapshots this member wrote.</summary>
    public long SnapshotsTaken => machine?.SnapshotsTaken ?? 0;

    /// <summary>Snapshots this member loaded (at start, or sent by the leader to catch up).</summary>
    public long SnapshotsRestored => machine?.SnapshotsRestored ?? 0;

    /// <summary>Log entries not in this log's layout (dropped, counted).</summary>
    public long MalformedEntries => machine?.MalformedEntries ?? 0;

    /// <summary>Forwarding connections whose TLS handshake failed (a certificate of another CA, none, not TLS).</summary>
    public long ForwardHandshakeFailures => server?.HandshakeFailures ?? 0;

    /// <summary>Forwarding frames dropped: over the size limit, or of an unknown type.</summary>
    public long ForwardMalformedFrames => (server?.OversizeFrames ?? 0) + (server?.MalformedFrames ?? 0);

    /// <inheritdoc/>
    public ValueTask StartAsync(IReplicatedStateMachine machine, CancellationToken cancellationToken = default)
        => StartCoreAsync(machine, coldStart: false, cancellationToken);

    /// <summary>
    /// Starts the member as the first of a new cluster (Raft's cold start) when its directory holds no membership yet,
    /// waits until it leads, and records its id; with an existing directory it is <see cref="IReplicatedLog.StartAsync"/>.
    /// </summary>
    public async ValueTask BootstrapAsync(IReplicatedStateMachine machine, CancellationToken cancellationToken = default)
    {
        await StartCoreAsync(machine, coldStart: true, cancellationToken).ConfigureAwait(false);
        // Record this member's id only in a cluster of itself alone (a fresh one): a member restarted with
        // BootstrapAsync after it was removed must not add itself back.
        if (this.machine!.Members.ContainsKey(options.MemberId) || cluster!.Members.Count != 1 || cluster.Members.First().IsRemote)
            return;
        try
        {
            ulong id = NewProposalId();
            await SubmitAsync(ForwardRequest.AddMember, EncodeStrings(options.MemberId, EndPointConfigurationStorage.Format(options.Advertised)), id, "recording this member", cancellationToken).ConfigureAwait(false);
        }
        catch
        {
            await DisposeAsync().ConfigureAwait(false);
            throw;
        }
    }

    private async ValueTask StartCoreAsync(IReplicatedStateMachine stateMachine, bool coldStart, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(stateMachine);
        ObjectDisposedException.ThrowIf(Volatile.Read(ref disposed) != 0, this);
        if (Interlocked.Exchange(ref started, 1) != 0)
            throw new InvalidOperationException("RaftLog: already started");
        try
        {
            string root = Path.GetFullPath(options.DataDirectory);
            CreatePrivateDirectory(root);
            string snapshots = Path.Combine(root, "snapshots"), log = Path.Combine(root, "wal");
            CreatePrivateDirectory(snapshots);
            CreatePrivateDirectory(log);

            machine = new RaftStateMachine(new DirectoryInfo(snapshots), stateMachine, options.SnapshotEvery);
            await machine.RestoreAsync(cancellationToken).ConfigureAwait(false);
            wal = new WriteAheadLog(new WriteAheadLog.Options
            {
                Location = log,
                ChunkSize = 1024 * 1024,
            }, machine);
            storage = new EndPointConfigurationStorage(Path.Combine(root, "members"));

            var configuration = new RaftCluster.TcpConfiguration(options.ListenEndPoint)
            {
                PublicEndPoint = options.Advertised,
                ColdStart = coldStart,
                ConfigurationStorage = storage,
                LowerElectionTimeout = (int)options.LowerElectionTimeout.TotalMilliseconds,
                UpperElectionTimeout = (int)options.UpperElectionTimeout.TotalMilliseconds,
                RequestTimeout = options.RequestTimeout,
                ConnectTimeout = options.RequestTimeout,
                WarmupRounds = options.WarmupRounds,
                LoggerFactory = loggerFactory,
                SslOptions = new SslOptions { ServerOptions = options.ServerTls, ClientOptions = options.ClientTls },
            };
            configuration.Metadata[MetadataId] = options.MemberId;
            configuration.Metadata[MetadataForward] = options.ForwardAdvertised.ToString();

            client = new ForwardClient(options.ClientTls, options.MaxCommandBytes + RaftEntry.HeaderLength);
            server = new ForwardServer(options.ForwardListen, options.ServerTls, options.MaxCommandBytes + RaftEntry.HeaderLength,
                HandleForwardedAsync, logger);

            cluster = new RaftCluster(configuration) { AuditTrail = wal };
            cluster.LeaderChanged += OnLeaderChanged;
            await cluster.StartAsync(cancellationToken).ConfigureAwait(false);
            server.Start();
            OnLeaderChanged(cluster, cluster.Leader);
            logger.LogInformation("raft: member {Id} started at {Address} ({Mode}), {Members} member(s) known, applied up to {Index}",
                options.MemberId, options.Advertised, coldStart ? "bootstrap" : "join/restart", cluster.Members.Count, wal.LastAppliedIndex);
        }
        catch
        {
            await StopAsync().ConfigureAwait(false);
            throw;
        }
    }

    private static void CreatePrivateDirectory(string path)
    {
        if (OperatingSystem.IsWindows())
        {
            Directory.CreateDirectory(path);
            return;
        }
        Directory.CreateDirectory(path, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        File.SetUnixFileMode(path, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
    }

    private void OnLeaderChanged(RaftCluster<RaftClusterMember> sender, RaftClusterMember? current)
    {
        int now = current is { IsRemote: false } && Volatile.Read(ref disposed) == 0 ? 1 : 0;
        if (Interlocked.Exchange(ref leader, now) != now)
        {
            logger.LogInformation("raft: member {Id} {Change}", options.MemberId, now == 1 ? "became the leader" : "is no longer the leader");
            LeadershipChanged?.Invoke(now == 1);
        }
    }

    private string IdOf(RaftClusterMember member)
    {
        string address = EndPointConfigurationStorage.Format(member.EndPoint);
        if (!member.IsRemote)
            return options.MemberId;
        if (machine is { } m)
            foreach ((string id, string recorded) in m.Members)
                if (recorded == address)
                    return id;
        return member.TryGetMetadata() is { } metadata && metadata.TryGetValue(MetadataId, out string? told) ? told : address;
    }

    /// <inheritdoc/>
    public async ValueTask ProposeAsync(ReadOnlyMemory<byte> command, CancellationToken cancellationToken = default)
    {
        if (command.IsEmpty)
            throw new StoreException(StoreErrorCode.InvalidArgument, "raft: an empty command");
        if (command.Length > options.MaxCommandBytes)
            throw new StoreException(StoreErrorCode.TooLarge, $"raft: a command of {command.Length} bytes exceeds the limit of {options.MaxCommandBytes}");
        ulong id = NewProposalId();
        await SubmitAsync(ForwardRequest.Propose, RaftEntry.Command(id, command.Span), id, "the proposal", cancellationToken).ConfigureAwait(false);
    }

    /// <summary>
    /// Waits until this member has applied every entry committed when the call began (asking the leader for its commit
    /// index when this member follows), so that a read of the local machine after it sees every write that completed
    /// before it anywhere: a linearizable read.
    /// </summary>
    /// <exception cref="StoreException"><see cref="StoreErrorCode.Unavailable"/>: no leader answered within <see cref="RaftLogOptions.ProposeTimeout"/>.</exception>
    public async ValueTask ReadBarrierAsync(CancellationToken cancellationToken = default)
    {
        if (Volatile.Read(ref started) == 0 || cluster is not { } raft)
            throw new InvalidOperationException("RaftLog: not started");
        using var deadline = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, lifetime.Token);
        deadline.CancelAfter(options.ProposeTimeout);
        string lastError = "no leader";
        try
        {
            while (true)
            {
                try
                {
                    await raft.ApplyReadBarrierAsync(deadline.Token).ConfigureAwait(false);
                    return;
                }
                catch (Exception e) when (!deadline.IsCancellationRequested && IsTransient(e))
                {
                    lastError = e.Message;
                }
                await Task.Delay(RetryDelay, deadline.Token).ConfigureAwait(false);
            }
        }
        catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
            if (lifetime.IsCancellationRequested)
                throw new StoreException(StoreErrorCode.Closed, $"raft: {Location} is closed");
            throw new StoreException(StoreErrorCode.Unavailable,
                $"raft: no leader confirmed the commit index within {options.ProposeTimeout.TotalSeconds:0.###} s (last: {lastError})");
        }
    }

    /// <summary>
    /// Adds the member <paramref name="id"/> listening at <paramref name="address"/> (its advertised Raft address) as a
    /// voter, after it caught up with the log; it must be running (<see cref="IReplicatedLog.StartAsync"/>, not bootstrap).
    /// Callable on any member (a follower forwards it to the leader). Adding a member already there at the same address
    /// does nothing; an id already used at another address is refused.
    /// </summary>
    /// <exception cref="ArgumentException">A bad id or address.</exception>
    /// <exception cref="InvalidOperationException">The leader refused (the id or address is taken, the node says it is another id).</exception>
    /// <exception cref="StoreException"><see cref="StoreErrorCode.Unavailable"/>: not done within <see cref="RaftLogOptions.ProposeTimeout"/> (it may still complete).</exception>
    public async Task AddMemberAsync(string id, EndPoint address, CancellationToken cancellationToken = default)
    {
        ValidateId(id, nameof(id));
        ArgumentNullException.ThrowIfNull(address);
        string text = EndPointConfigurationStorage.Format(address);
        if (EndPointConfigurationStorage.Parse(text) is null || text.Length > RaftEntry.MaxIdLength)
            throw new ArgumentException($"address: \"{text}\" is not IP:PORT or host:port", nameof(address));
        await SubmitAsync(ForwardRequest.AddMember, EncodeStrings(id, text), NewProposalId(), $"adding member {id}", cancellationToken).ConfigureAwait(false);
    }

    /// <summary>
    /// Removes the member <paramref name="id"/> (by node id, or by Raft address for a member whose id is not recorded)
    /// from the voters. Callable on any member (a follower forwards it to the leader).
    /// </summary>
    /// <exception cref="ArgumentException">A bad id.</exception>
    /// <exception cref="InvalidOperationException">No such member.</exception>
    /// <exception cref="StoreException"><see cref="StoreErrorCode.Unavailable"/>: not done within <see cref="RaftLogOptions.ProposeTimeout"/> (it may still complete).</exception>
    public async Task RemoveMemberAsync(string id, CancellationToken cancellationToken = default)
    {
        ValidateId(id, nameof(id));
        await SubmitAsync(ForwardRequest.RemoveMember, EncodeStrings(id), NewProposalId(), $"removing member {id}", cancellationToken).ConfigureAwait(false);
    }

    private static void ValidateId(string id, string name)
    {
        if (string.IsNullOrWhiteSpace(id))
            throw new ArgumentException($"{name}: must be a non-empty node id", name);
        if (id.Length > RaftEntry.MaxIdLength)
            throw new ArgumentException($"{name}: longer than {RaftEntry.MaxIdLength} characters", name);
    }

    /// <summary>
    /// Runs a request on the leader: here if this member leads, else through the forwarding channel, retrying (a new
    /// leader, a lost connection) until it is done or <see cref="RaftLogOptions.ProposeTimeout"/> passes.
    /// </summary>
    private async Task SubmitAsync(ForwardRequest type, byte[] body, ulong proposalId, string what, CancellationToken cancellationToken)
    {
        if (Volatile.Read(ref started) == 0 || cluster is null || machine is null || wal is null || client is null)
            throw new InvalidOperationException("RaftLog: not started");
        if (Volatile.Read(ref disposed) != 0)
            throw new StoreException(StoreErrorCode.Closed, $"raft: {Location} is closed");
        using var deadline = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, lifetime.Token);
        deadline.CancelAfter(options.ProposeTimeout);
        CancellationToken token = deadline.Token;
        Task<long>? applied = type == ForwardRequest.Propose ? machine.Expect(proposalId, out _) : null;
        string lastError = "no leader";
        bool refresh = false;
        try
        {
            while (true)
            {
                try
                {
                    if (IsLeader)
                    {
                        ForwardReply reply = await RunOnLeaderAsync(type, body, token).ConfigureAwait(false);
                        if (reply.Status == ForwardStatus.Ok)
                            return;
                        ThrowIfRejected(reply);
                        lastError = reply.Message;
                    }
                    else if (cluster.Leader is { } current && await ForwardAddressAsync(current, refresh, token).ConfigureAwait(false) is { } target)
                    {
                        refresh = true; // until it worked: the leader may have restarted with another forwarding address
                        ForwardReply reply = await client.SendAsync(target, type, body, token).ConfigureAwait(false);
                        refresh = false;
                        if (reply.Status == ForwardStatus.Ok)
                        {
                            // Applied on the leader; wait until it is applied here too: our entry applied, or (when a
                            // snapshot from the leader covered it) the log applied past its index.
                            Task reached = wal.WaitForApplyAsync(reply.Index, token).AsTask();
                            if (applied is not null && await Task.WhenAny(applied, reached).ConfigureAwait(false) == applied)
                                await applied.ConfigureAwait(false);
                            else
                                await reached.ConfigureAwait(false);
                            return;
                        }
                        ThrowIfRejected(reply);
                        lastError = $"{current.EndPoint}: {reply.Message}";
                    }
                    else
                    {
                        lastError = "no leader";
                    }
                }
                catch (Exception e) when (!token.IsCancellationRequested && IsTransient(e))
                {
                    lastError = e.Message;
                }
                await Task.Delay(RetryDelay, token).ConfigureAwait(false);
            }
        }
        catch (RefusedException e)
        {
            throw new InvalidOperationException($"raft: {what}: {e.Message}");
        }
        catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
            if (lifetime.IsCancellationRequested)
                throw new StoreException(StoreErrorCode.Closed, $"raft: {Location} closed before {what} was applied");
            throw new StoreException(StoreErrorCode.Unavailable,
                $"raft: no leader accepted {what} within {options.ProposeTimeout.TotalSeconds:0.###} s (last: {lastError}); it may still be applied later");
        }
        finally
        {
            if (type == ForwardRequest.Propose)
                machine.Forget(proposalId);
        }
    }

    // NotLeaderException and QuorumUnreachableException are LeaderOperationExceptions; a membership change under way
    // elsewhere is a RaftProtocolException.
    private static bool IsTransient(Exception e) => e is LeaderOperationException or MemberUnavailableException or IOException or SocketException
        or AuthenticationException or RaftProtocolException or TimeoutException or KeyNotFoundException or FormatException;

    private static void ThrowIfRejected(ForwardReply reply)
    {
        if (reply.Status == ForwardStatus.Rejected)
            throw new RefusedException(reply.Message);
    }

    private static async Task<IPEndPoint?> ForwardAddressAsync(RaftClusterMember member, bool refresh, CancellationToken cancellationToken)
    {
        IReadOnlyDictionary<string, string> metadata = await member.GetMetadataAsync(refresh, cancellationToken).ConfigureAwait(false);
        return metadata.TryGetValue(MetadataForward, out string? text) && IPEndPoint.TryParse(text, out IPEndPoint? target) ? target : null;
    }

    /// <summary>The forwarding channel's handler: a follower's request, run here if this member leads.</summary>
    private async Task<ForwardReply> HandleForwardedAsync(ForwardRequest type, ReadOnlyMemory<byte> body, CancellationToken cancellationToken)
    {
        if (!IsLeader)
            return new ForwardReply(ForwardStatus.NotLeader, 0, "not the leader");
        using var deadline = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        deadline.CancelAfter(options.ProposeTimeout);
        try
        {
            return await RunOnLeaderAsync(type, body.ToArray(), deadline.Token).ConfigureAwait(false);
        }
        catch (NotLeaderException)
        {
            return new ForwardReply(ForwardStatus.NotLeader, 0, "lost the leadership");
        }
        catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
            return new ForwardReply(ForwardStatus.Failed, 0, "not applied in time on the leader");
        }
        catch (RefusedException e)
        {
            return new ForwardReply(ForwardStatus.Rejected, 0, e.Message);
        }
    }

    /// <summary>Does a request as the leader; Rejected for a request that is wrong, exceptions for what may pass.</summary>
    private async Task<ForwardReply> RunOnLeaderAsync(ForwardRequest type, byte[] body, CancellationToken cancellationToken)
    {
        switch (type)
        {
            case ForwardRequest.Propose:
                if (!RaftEntry.TryReadHeader(body, out RaftEntryKind kind, out ulong proposalId, out _) || kind != RaftEntryKind.Command
                    || body.Length == RaftEntry.HeaderLength || body.Length > options.MaxCommandBytes + RaftEntry.HeaderLength)
                    return new ForwardReply(ForwardStatus.Rejected, 0, "not a command entry");
                return ForwardReply.Done(await AppendAsLeaderAsync(body, proposalId, cancellationToken).ConfigureAwait(false));
            case ForwardRequest.AddMember:
                {
                    ReadOnlySpan<byte> rest = body;
                    if (!RaftEntry.TryReadString(ref rest, out string id) || !RaftEntry.TryReadString(ref rest, out string address)
                        || EndPointConfigurationStorage.Parse(address) is not { } endPoint || id.Length > RaftEntry.MaxIdLength)
                        return new ForwardReply(ForwardStatus.Rejected, 0, "a malformed add-member request");
                    return ForwardReply.Done(await AddAsLeaderAsync(id, address, endPoint, cancellationToken).ConfigureAwait(false));
                }
            case ForwardRequest.RemoveMember:
                {
                    ReadOnlySpan<byte> rest = body;
                    if (!RaftEntry.TryReadString(ref rest, out string id))
                        return new ForwardReply(ForwardStatus.Rejected, 0, "a malformed remove-member request");
                    return ForwardReply.Done(await RemoveAsLeaderAsync(id, cancellationToken).ConfigureAwait(false));
                }
            default:
                return new ForwardReply(ForwardStatus.Rejected, 0, $"unknown request {(byte)type}");
        }
    }

    /// <summary>Appends an entry as the leader and returns its index once this member applied it.</summary>
    private async Task<long> AppendAsLeaderAsync(byte[] entry, ulong proposalId, CancellationToken cancellationToken)
    {
        RaftCluster raft = cluster!;
        Task<long> applied = machine!.Expect(proposalId, out bool created);
        try
        {
            // DotNext appends, replicates, and returns once the entry at that index is applied here.
            await raft.ReplicateAsync(entry, null, cancellationToken).ConfigureAwait(false);
            // If leadership moved meanwhile, another entry may hold that index; then ours is not applied (wait until the deadline).
            return await applied.WaitAsync(cancellationToken).ConfigureAwait(false);
        }
        finally
        {
            if (created)
                machine.Forget(proposalId);
        }
    }

    private async Task<long> AddAsLeaderAsync(string id, string address, EndPoint endPoint, CancellationToken cancellationToken)
    {
        RaftCluster raft = cluster!;
        var records = machine!.Members;
        if (records.TryGetValue(id, out string? recorded) && recorded != address)
            throw new RefusedException($"member {id} is already in the cluster at {recorded}: remove it first");
        foreach ((string other, string otherAddress) in records)
            if (otherAddress == address && other != id)
                throw new RefusedException($"address {address} already belongs to member {other}");
        bool voter = FindMember(raft, address) is not null;
        if (!voter)
        {
            if (!await raft.AddMemberAsync(endPoint, cancellationToken).ConfigureAwait(false))
                throw new RaftProtocolException($"member {id} at {address} did not catch up, or its addition was not committed");
            logger.LogInformation("raft: member {Id} at {Address} added", id, address);
        }
        if (FindMember(raft, address) is { IsRemote: true } added)
        {
            // The node tells its own id: refuse (and undo) an addition under the wrong name.
            IReadOnlyDictionary<string, string> metadata = await added.GetMetadataAsync(true, cancellationToken).ConfigureAwait(false);
            if (metadata.TryGetValue(MetadataId, out string? told) && told != id)
            {
                if (!voter)
                    await raft.RemoveMemberAsync(endPoint, cancellationToken).ConfigureAwait(false);
                throw new RefusedException($"the member at {address} is {told}, not {id}");
            }
        }
        if (recorded == address)
            return wal!.LastAppliedIndex;
        ulong proposalId = NewProposalId();
        return await AppendAsLeaderAsync(RaftEntry.MemberSet(proposalId, id, address), proposalId, cancellationToken).ConfigureAwait(false);
    }

    private async Task<long> RemoveAsLeaderAsync(string id, CancellationToken cancellationToken)
    {
        RaftCluster raft = cluster!;
        var records = machine!.Members;
        string? address = records.TryGetValue(id, out string? recorded) ? recorded
            : FindMember(raft, id) is not null ? id : null;
        if (address is null)
            throw new RefusedException($"no member {id} in the cluster");
        if (FindMember(raft, address) is { } member)
        {
            if (!await raft.RemoveMemberAsync(member.EndPoint, cancellationToken).ConfigureAwait(false))
                throw new RaftProtocolException($"the removal of member {id} was not committed");
            logger.LogInformation("raft: member {Id} at {Address} removed", id, address);
        }
        if (recorded is null)
            return wal!.LastAppliedIndex;
        ulong proposalId = NewProposalId();
        return await AppendAsLeaderAsync(RaftEntry.MemberRemove(proposalId, id), proposalId, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>A request the leader refuses (retrying does not help); callers see an <see cref="InvalidOperationException"/>.</summary>
    private sealed class RefusedException(string message) : InvalidOperationException(message);

    private static RaftClusterMember? FindMember(RaftCluster raft, string address)
    {
        foreach (RaftClusterMember member in raft.Members)
            if (EndPointConfigurationStorage.Format(member.EndPoint) == address)
                return member;
        return null;
    }

    private static byte[] EncodeStrings(params string[] values)
    {
        var buffer = new MemoryStream();
        foreach (string value in values)
        {
            byte[] bytes = Encoding.UTF8.GetBytes(value);
            buffer.WriteByte((byte)bytes.Length);
            buffer.WriteByte((byte)(bytes.Length >> 8));
            buffer.Write(bytes);
        }
        return buffer.ToArray();
    }

    private static ulong NewProposalId()
    {
        Span<byte> bytes = stackalloc byte[8];
        RandomNumberGenerator.Fill(bytes);
        return BitConverter.ToUInt64(bytes);
    }

    /// <summary>Stops the member: closes both listeners and every connection, flushes and closes the log's files.</summary>
    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref disposed, 1) != 0)
            return;
        await StopAsync().ConfigureAwait(false);
        lifetime.Dispose();
    }

    private async Task StopAsync()
    {
        await lifetime.CancelAsync().ConfigureAwait(false);
        machine?.FailWaiters(new StoreException(StoreErrorCode.Closed, $"raft: {Location} is closed"));
        if (Interlocked.Exchange(ref server, null) is { } s)
            await s.DisposeAsync().ConfigureAwait(false);
        if (Interlocked.Exchange(ref cluster, null) is { } raft)
        {
            raft.LeaderChanged -= OnLeaderChanged;
            try
            {
                await raft.StopAsync(CancellationToken.None).ConfigureAwait(false);
            }
            catch (Exception e)
            {
                logger.LogDebug(e, "raft: stopping member {Id}", options.MemberId);
            }
            await raft.DisposeAsync().ConfigureAwait(false);
        }
        if (wal is { } log)
            await log.DisposeAsync().ConfigureAwait(false);
        if (machine is { } m)
            await m.DisposeAsync().ConfigureAwait(false);
        Interlocked.Exchange(ref storage, null)?.Dispose();
        if (Interlocked.Exchange(ref client, null) is { } c)
            await c.DisposeAsync().ConfigureAwait(false);
        if (Interlocked.Exchange(ref leader, 0) == 1)
            LeadershipChanged?.Invoke(false);
    }
}
