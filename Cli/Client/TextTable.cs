using System.Text;

namespace UserOverlay.Cli.Client;

/// <summary>Plain-text output of the client commands: docker-style tables and relative times.</summary>
public static class TextTable
{
    /// <summary>
    /// A header line and one line per row, columns left-aligned and separated by at least three spaces, as
    /// <c>docker network ls</c> prints them; the last column is not padded, so lines carry no trailing blanks.
    /// </summary>
    public static string Format(IReadOnlyList<string> head, IEnumerable<IReadOnlyList<string>> rows, string separator = "   ")
    {
        var all = rows.Prepend(head).ToList();
        var width = head.Select((_, i) => all.Max(r => r[i].Length)).ToArray();
        var b = new StringBuilder();
        foreach (var row in all)
            b.Append(string.Join(separator, row.Select((c, i) => i == row.Count - 1 ? c : c.PadRight(width[i]))).TrimEnd()).Append('\n');
        return b.ToString();
    }

    /// <summary>"5 seconds ago", "3 minutes ago", "2 hours ago", "4 days ago".</summary>
    public static string Ago(DateTimeOffset t, DateTimeOffset now)
    {
        var d = now - t;
        static string N(double v, string unit) => $"{(long)v} {unit}{((long)v == 1 ? "" : "s")} ago";
        return d.TotalSeconds < 1 ? "just now"
            : d.TotalMinutes < 1 ? N(d.TotalSeconds, "second")
            : d.TotalHours < 1 ? N(d.TotalMinutes, "minute")
            : d.TotalDays < 2 ? N(d.TotalHours, "hour")
            : N(d.TotalDays, "day");
    }

    /// <summary>User text with control characters escaped (\u000a), so that a message stays one line.</summary>
    public static string Printable(string s) => string.Concat(s.Select(c => char.IsControl(c) ? $"\\u{(int)c:x4}" : c.ToString()));
}
