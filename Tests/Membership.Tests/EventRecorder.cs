using System.Collections.Concurrent;

namespace UserOverlay.Membership.Tests;

/// <summary>Records membership events, thread-safe.</summary>
public sealed class EventRecorder : IMembershipEvents
{
    public readonly ConcurrentQueue<(string Kind, MemberInfo Member, DateTime At)> Events = new();

    public void OnJoin(MemberInfo member) => Events.Enqueue(("join", member, DateTime.UtcNow));
    public void OnLeave(MemberInfo member) => Events.Enqueue(("leave", member, DateTime.UtcNow));
    public void OnUpdate(MemberInfo member) => Events.Enqueue(("update", member, DateTime.UtcNow));

    public IEnumerable<MemberInfo> Of(string kind, string node) => Events.Where(e => e.Kind == kind && e.Member.Name == node).Select(e => e.Member);
}
