using System.Diagnostics;
using UserOverlay.Testing.Common;

namespace UserOverlay.Membership.Tests;

/// <summary>Base: one UserOverlay member next to serf agents on private loopback addresses.</summary>
public abstract class SerfInteropBase
{
    protected static readonly TimeSpan Wait = TimeSpan.FromSeconds(30);
    protected const string Key = "AAECAwQFBgcICQoLDA0ODw==";

    protected static bool SerfSees(SerfAgent agent, string node, string status) => agent.StatusOf(node) == status;

    protected static MemberState? Sees(Memberlist m, string node) => m.GetMember(node)?.State;

    /// <summary>Polls until <paramref name="node"/> is dead in <paramref name="m"/>, recording whether it was seen suspect first; returns the time from <paramref name="since"/>.</summary>
    protected static async Task<(bool SawSuspect, TimeSpan Elapsed)> WaitSuspectThenDeadAsync(Memberlist m, string node, Stopwatch since)
    {
        bool sawSuspect = false;
        await Eventually.True(() =>
        {
            var s = Sees(m, node);
            if (s == MemberState.Suspect) sawSuspect = true;
            return s == MemberState.Dead;
        }, Wait, $"{node} dead", pollMilliseconds: 20);
        return (sawSuspect, since.Elapsed);
    }
}
