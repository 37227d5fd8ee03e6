using System.Globalization;
using System.Text.RegularExpressions;

namespace UserOverlay.Testing.Common;

/// <summary>
/// A strict reader of Prometheus' text exposition format (version 0.0.4), for tests: it checks what a scraper relies
/// on — every sample belongs to a family declared by a <c># TYPE</c> line before it, names and label names are valid,
/// label values are quoted with only \\, \" and \n escaped, values are floats (or +Inf, -Inf, NaN), a family's
/// samples are contiguous and no series appears twice — and throws <see cref="FormatException"/> naming the line otherwise.
/// </summary>
public sealed partial class PrometheusText
{
    /// <summary>One sample: its name, labels and value.</summary>
    public sealed record Sample(string Name, IReadOnlyDictionary<string, string> Labels, double Value);

    /// <summary>Families by name, with their type (counter, gauge, histogram, summary, untyped).</summary>
    public IReadOnlyDictionary<string, string> Types { get; }

    /// <summary>Every sample in order.</summary>
    public IReadOnlyList<Sample> Samples { get; }

    private PrometheusText(Dictionary<string, string> types, List<Sample> samples)
    {
        Types = types;
        Samples = samples;
    }

    [GeneratedRegex("^[a-zA-Z_:][a-zA-Z0-9_:]*$")]
    private static partial Regex MetricName();

    [GeneratedRegex("^[a-zA-Z_][a-zA-Z0-9_]*$")]
    private static partial Regex LabelName();

    public static PrometheusText Parse(string text)
    {
        var types = new Dictionary<string, string>(StringComparer.Ordinal);
        var samples = new List<Sample>();
        var seen = new HashSet<string>(StringComparer.Ordinal);
        var closed = new HashSet<string>(StringComparer.Ordinal);
        string? current = null;
        int number = 0;
        foreach (string raw in text.Split('\n'))
        {
            number++;
            string line = raw.TrimEnd('\r');
            if (line.Length == 0) continue;
            FormatException Bad(string why) => new($"line {number}: {why}: {line}");
            if (line.StartsWith('#'))
            {
                var parts = line.Split(' ', 4);
                if (parts.Length >= 3 && parts[1] is "TYPE" or "HELP")
                {
                    if (!MetricName().IsMatch(parts[2])) throw Bad("invalid metric name");
                    if (parts[1] == "TYPE")
                    {
                        if (parts.Length != 4 || parts[3] is not ("counter" or "gauge" or "histogram" or "summary" or "untyped")) throw Bad("invalid type");
                        if (!types.TryAdd(parts[2], parts[3])) throw Bad("a second TYPE line for the family");
                    }
                }
                continue;
            }
            int i = 0;
            while (i < line.Length && line[i] is not ('{' or ' ')) i++;
            string name = line[..i];
            if (!MetricName().IsMatch(name)) throw Bad("invalid metric name");
            string family = FamilyOf(name, types) ?? throw Bad("a sample before its family's TYPE line");
            if (family != current)
            {
                if (current is not null) closed.Add(current);
                if (closed.Contains(family)) throw Bad("the family's samples are not together");
                current = family;
            }
            var labels = new SortedDictionary<string, string>(StringComparer.Ordinal);
            if (i < line.Length && line[i] == '{')
            {
                i++;
                while (line[i] != '}')
                {
                    int eq = line.IndexOf('=', i);
                    if (eq < 0) throw Bad("a label without =");
                    string label = line[i..eq];
                    if (!LabelName().IsMatch(label)) throw Bad($"invalid label name '{label}'");
                    if (eq + 1 >= line.Length || line[eq + 1] != '"') throw Bad("an unquoted label value");
                    var value = new System.Text.StringBuilder();
                    int j = eq + 2;
                    for (; j < line.Length && line[j] != '"'; j++)
                    {
                        if (line[j] != '\\') { value.Append(line[j]); continue; }
                        j++;
                        value.Append(j < line.Length ? line[j] switch { '\\' => '\\', '"' => '"', 'n' => '\n', _ => throw Bad("an invalid escape") } : throw Bad("a cut escape"));
                    }
                    if (j >= line.Length) throw Bad("an unterminated label value");
                    if (!labels.TryAdd(label, value.ToString())) throw Bad($"label '{label}' twice");
                    i = j + 1;
                    if (i < line.Length && line[i] == ',') i++;
                    if (i >= line.Length) throw Bad("unterminated labels");
                }
                i++;
            }
            if (i >= line.Length || line[i] != ' ') throw Bad("no value");
            var fields = line[(i + 1)..].Split(' ');
            if (fields.Length is < 1 or > 2) throw Bad("more than a value and a timestamp");
            double v = fields[0] switch
            {
                "+Inf" => double.PositiveInfinity,
                "-Inf" => double.NegativeInfinity,
                "NaN" => double.NaN,
                _ => double.TryParse(fields[0], NumberStyles.Float, CultureInfo.InvariantCulture, out double d) ? d : throw Bad("a value that is not a float"),
            };
            if (fields.Length == 2 && !long.TryParse(fields[1], out _)) throw Bad("a timestamp that is not an integer");
            string key = name + "{" + string.Join(",", labels.Select(kv => $"{kv.Key}={kv.Value}")) + "}";
            if (!seen.Add(key)) throw Bad("the same series twice");
            if (types[family] == "counter" && v < 0) throw Bad("a negative counter");
            samples.Add(new Sample(name, labels, v));
        }
        return new PrometheusText(types, samples);
    }

    private static string? FamilyOf(string name, Dictionary<string, string> types)
    {
        if (types.ContainsKey(name)) return name;
        foreach (string suffix in new[] { "_bucket", "_sum", "_count", "_total", "_created" })
            if (name.EndsWith(suffix, StringComparison.Ordinal) && types.ContainsKey(name[..^suffix.Length])) return name[..^suffix.Length];
        return null;
    }

    /// <summary>The samples of <paramref name="name"/> whose labels include every one of <paramref name="labels"/> ("k=v").</summary>
    public IEnumerable<Sample> Find(string name, params string[] labels) =>
        Samples.Where(s => s.Name == name && labels.All(l =>
        {
            int eq = l.IndexOf('=');
            return s.Labels.TryGetValue(l[..eq], out var v) && v == l[(eq + 1)..];
        }));

    /// <summary>The sum of the matching samples' values (0 when there are none).</summary>
    public double Value(string name, params string[] labels) => Find(name, labels).Sum(s => s.Value);

    /// <summary>Whether a family of that name (or a sample of it) is exposed.</summary>
    public bool Has(string name) => Types.ContainsKey(name) || Samples.Any(s => s.Name == name);
}
