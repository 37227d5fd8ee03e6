namespace UserOverlay.Router;

/// <summary>Stable snake_case names of <see cref="DropReason"/> values for metrics and JSON.</summary>
public static class DropReasons
{
    /// <summary>Number of reasons.</summary>
    public static readonly int Count = Enum.GetValues<DropReason>().Length;

    private static readonly string[] Names = Enum.GetValues<DropReason>().Select(ToSnakeCase).ToArray();

    /// <summary>"unknown_vni" for <see cref="DropReason.UnknownVni"/>.</summary>
    public static string Name(DropReason reason) => Names[(int)reason];

    private static string ToSnakeCase(DropReason r)
    {
        string s = r.ToString();
        var sb = new System.Text.StringBuilder();
        for (int i = 0; i < s.Length; i++)
        {
            if (char.IsUpper(s[i]) && i > 0) sb.Append('_');
            sb.Append(char.ToLowerInvariant(s[i]));
        }
        return sb.ToString();
    }
}
