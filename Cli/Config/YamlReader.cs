using System.Globalization;
using YamlDotNet.Core;
using YamlDotNet.RepresentationModel;

namespace UserOverlay.Cli.Config;

/// <summary>
/// Walks a YAML document (YamlDotNet's representation model) keeping each node's position, so every
/// error names the file, the line and the field. Collects errors instead of stopping at the first,
/// and remembers where each field path was found so later validation can point at it too.
/// </summary>
internal sealed class YamlReader
{
    private readonly string _file;
    private readonly List<ConfigError> _errors = [];
    private readonly Dictionary<string, Mark> _marks = new(StringComparer.Ordinal);

    public YamlReader(string file) => _file = file;

    public IReadOnlyList<ConfigError> Errors => _errors;

    /// <summary>Parses the text; returns the root mapping, or null (with an error) when it is not one.</summary>
    public YamlMappingNode? Parse(string text)
    {
        var stream = new YamlStream();
        try
        {
            stream.Load(new StringReader(text));
        }
        catch (YamlException e)
        {
            _errors.Add(new ConfigError(_file, (int)e.Start.Line, (int)e.Start.Column, "(syntax)", e.InnerException?.Message ?? e.Message));
            return null;
        }
        if (stream.Documents.Count == 0 || stream.Documents[0].RootNode is YamlScalarNode { Value: null or "" })
        {
            _errors.Add(new ConfigError(_file, 0, 0, "(document)", "the file is empty"));
            return null;
        }
        if (stream.Documents[0].RootNode is not YamlMappingNode root)
        {
            Error(stream.Documents[0].RootNode, "(document)", "the top level must be a mapping (underlay:, networks:, endpoints: …)");
            return null;
        }
        return root;
    }

    public void Error(YamlNode? node, string path, string message)
    {
        var mark = node?.Start ?? (_marks.TryGetValue(path, out var m) ? m : Mark.Empty);
        _errors.Add(new ConfigError(_file, (int)mark.Line, (int)mark.Column, path, message));
    }

    /// <summary>Error for a field path recorded earlier (used when mapping validation errors back to lines).</summary>
    public void ErrorAt(string path, string message)
    {
        // Walk up the path until a recorded position is found: "endpoints[1].mac" → "endpoints[1]".
        string p = path;
        while (!_marks.ContainsKey(p))
        {
            int cut = Math.Max(p.LastIndexOf('.'), p.LastIndexOf('['));
            if (cut <= 0) break;
            p = p[..cut];
        }
        var mark = _marks.TryGetValue(p, out var m) ? m : Mark.Empty;
        _errors.Add(new ConfigError(_file, (int)mark.Line, (int)mark.Column, path, message));
    }

    private void Remember(string path, YamlNode node) => _marks[path] = node.Start;

    /// <summary>Checks that a mapping only has known keys; returns the key → value lookup.</summary>
    public Dictionary<string, YamlNode> Fields(YamlMappingNode map, string path, params string[] known)
    {
        Remember(path.Length == 0 ? "(document)" : path, map);
        var result = new Dictionary<string, YamlNode>(StringComparer.Ordinal);
        foreach (var (k, v) in map.Children)
        {
            string key = (k as YamlScalarNode)?.Value ?? "";
            string full = path.Length == 0 ? key : $"{path}.{key}";
            if (Array.IndexOf(known, key) < 0)
            {
                string? hint = known.FirstOrDefault(x => Near(x, key));
                Error(k, full, $"unknown field '{key}'" + (hint is not null ? $"; did you mean '{hint}'?" : $" (known here: {string.Join(", ", known)})"));
                continue;
            }
            if (!result.TryAdd(key, v)) { Error(k, full, $"'{key}' is given twice"); continue; }
            Remember(full, v);
        }
        return result;
    }

    private static bool Near(string a, string b)
    {
        if (Math.Abs(a.Length - b.Length) > 2) return false;
        var d = new int[a.Length + 1, b.Length + 1];
        for (int i = 0; i <= a.Length; i++) d[i, 0] = i;
        for (int j = 0; j <= b.Length; j++) d[0, j] = j;
        for (int i = 1; i <= a.Length; i++)
            for (int j = 1; j <= b.Length; j++)
                d[i, j] = Math.Min(Math.Min(d[i - 1, j] + 1, d[i, j - 1] + 1), d[i - 1, j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1));
        return d[a.Length, b.Length] <= 2;
    }

    public YamlMappingNode? Mapping(YamlNode node, string path)
    {
        if (node is YamlMappingNode m) return m;
        Error(node, path, "must be a mapping (key: value pairs)");
        return null;
    }

    public IReadOnlyList<YamlNode> Sequence(YamlNode node, string path)
    {
        if (node is YamlSequenceNode s)
        {
            for (int i = 0; i < s.Children.Count; i++) Remember($"{path}[{i}]", s.Children[i]);
            return s.Children.ToList();
        }
        if (node is YamlScalarNode { Value: null or "" or "~" }) return [];
        Error(node, path, "must be a list");
        return [];
    }

    public string? Scalar(YamlNode node, string path)
    {
        if (node is YamlScalarNode s) return s.Value;
        Error(node, path, "must be a single value, not a list or mapping");
        return null;
    }

    public string? String(Dictionary<string, YamlNode> f, string key, string path, bool required)
    {
        if (!f.TryGetValue(key, out var n))
        {
            if (required) ErrorMissing(path, key);
            return null;
        }
        string? v = Scalar(n, Join(path, key));
        if (required && string.IsNullOrWhiteSpace(v)) { Error(n, Join(path, key), "must not be empty"); return null; }
        return v;
    }

    public long? Integer(Dictionary<string, YamlNode> f, string key, string path, bool required, long min, long max)
    {
        string? s = String(f, key, path, required);
        if (s is null) return null;
        if (!long.TryParse(s, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out long v))
        {
            Error(f[key], Join(path, key), $"'{s}' is not a whole number");
            return null;
        }
        if (v < min || v > max)
        {
            Error(f[key], Join(path, key), $"{v} is out of range ({min} to {max})");
            return null;
        }
        return v;
    }

    public bool? Boolean(Dictionary<string, YamlNode> f, string key, string path)
    {
        string? s = String(f, key, path, false);
        if (s is null) return null;
        switch (s.ToLowerInvariant())
        {
            case "true" or "yes" or "on": return true;
            case "false" or "no" or "off": return false;
            default:
                Error(f[key], Join(path, key), $"'{s}' is not true or false");
                return null;
        }
    }

    /// <summary>
    /// A duration: a number of seconds, or a number with a unit (ms, s, m, h), e.g. 300, 300s, 5m. Positive, or with
    /// <paramref name="allowOff"/> also 0 or off (→ <see cref="TimeSpan.Zero"/>).
    /// </summary>
    public TimeSpan? Duration(Dictionary<string, YamlNode> f, string key, string path, bool allowOff = false)
    {
        string? s = String(f, key, path, false);
        if (s is null) return null;
        s = s.Trim();
        if (allowOff && s is "off" or "false") return TimeSpan.Zero;
        if (!TryParseDuration(s, out var d) || (d == TimeSpan.Zero && !allowOff))
        {
            Error(f[key], Join(path, key), allowOff
                ? $"'{s}' is not a duration (seconds, or with a unit: 500ms, 30s, 5m, 1h; 0 or off turns it off)"
                : $"'{s}' is not a positive duration (seconds, or with a unit: 500ms, 30s, 5m, 1h)");
            return null;
        }
        return d;
    }

    /// <summary>Parses a number of seconds, or a number with a unit (ms, s, m, h): 300, 300s, 5m, 1.5h; zero or more.</summary>
    public static bool TryParseDuration(string text, out TimeSpan duration) => UserOverlay.Control.Durations.TryParse(text, out duration);

    public void ErrorMissing(string path, string key)
    {
        string where = path.Length == 0 ? "(document)" : path;
        ErrorAt(where, $"'{key}' is required");
        // ErrorAt recorded the error under the parent; rename it to the missing field's path.
        var last = _errors[^1];
        _errors[^1] = last with { Path = Join(path, key) };
    }

    public static string Join(string path, string key) => path.Length == 0 ? key : $"{path}.{key}";
}
