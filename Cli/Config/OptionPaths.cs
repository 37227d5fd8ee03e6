using System.Text;
using System.Text.RegularExpressions;

namespace UserOverlay.Cli.Config;

/// <summary>
/// Maps the router library's property paths (<see cref="Router.OptionError.Path"/>: <c>BatchSize</c>,
/// <c>Networks[1].Vni</c>, <c>StaticFdb[0].Vtep</c>, <c>Encryption.Esp.RekeyInterval</c>) to the YAML
/// field paths of the configuration file (<c>batch_size</c>, <c>networks[1].vni</c>, <c>fdb[0].vtep</c>,
/// <c>encryption.rekey_interval</c>), so a validation error points at the line that set the field.
/// List indexes map back to the file's entries (the parsed lists skip entries that had errors).
/// References to other entries inside a message (<c>already used by Networks[0]</c>) are mapped too.
/// </summary>
internal sealed partial class OptionPaths(IReadOnlyList<int> endpointIndex, IReadOnlyList<int> fdbIndex)
{
    /// <summary>Property names whose YAML name is not their snake_case form (the rest are: BatchSize → batch_size).</summary>
    private static readonly Dictionary<string, string> Renamed = new(StringComparer.Ordinal)
    {
        ["StaticFdb"] = "fdb",
        ["TapOffload"] = "offload",
        ["UnderlayMtu"] = "underlay.mtu",
        ["UnansweredAging"] = "fdb_unanswered",
        ["Encapsulation"] = "esp",
    };

    /// <summary>The YAML path of an options path.</summary>
    public string ToYaml(string path)
    {
        var parts = new List<string>();
        foreach (string segment in path.Split('.'))
        {
            int bracket = segment.IndexOf('[');
            string name = bracket < 0 ? segment : segment[..bracket];
            string index = bracket < 0 ? "" : segment[bracket..];
            if (parts is ["encryption"] && name == "Esp") continue; // the ESP settings are encryption:'s own fields
            string yaml = Renamed.TryGetValue(name, out string? r) ? r : SnakeCase(name);
            parts.Add(yaml + FileIndex(yaml, index));
        }
        return string.Join('.', parts);
    }

    /// <summary>The message with every reference to a list entry (<c>Endpoints[2]</c>) in YAML form.</summary>
    public string ToYamlMessage(string message) => EntryReference().Replace(message, m => ToYaml(m.Value));

    private string FileIndex(string list, string index)
    {
        if (index.Length < 3 || !int.TryParse(index.AsSpan(1, index.Length - 2), out int i)) return index;
        var map = list switch { "endpoints" => endpointIndex, "fdb" => fdbIndex, _ => null };
        return map is not null && i < map.Count ? $"[{map[i]}]" : index;
    }

    private static string SnakeCase(string name)
    {
        var b = new StringBuilder(name.Length + 4);
        for (int i = 0; i < name.Length; i++)
        {
            if (char.IsUpper(name[i]) && i > 0) b.Append('_');
            b.Append(char.ToLowerInvariant(name[i]));
        }
        return b.ToString();
    }

    [GeneratedRegex(@"\b(Networks|Endpoints|StaticFdb|Peers)\[\d+\]")]
    private static partial Regex EntryReference();
}
