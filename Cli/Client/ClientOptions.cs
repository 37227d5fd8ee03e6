using System.CommandLine;
using UserOverlay.Control.Networks;

namespace UserOverlay.Cli.Client;

/// <summary>Options of the client commands that need more than a plain type: repeated KEY=VALUE flags.</summary>
public static class ClientOptions
{
    /// <summary>
    /// A repeatable <c>--NAME KEY=VALUE</c> (Docker's --label, --aux-address, --opt) read into a dictionary with
    /// <see cref="KeyValueList"/>; a malformed item or a key given twice is a usage error naming the flag.
    /// </summary>
    public static Option<Dictionary<string, string>> KeyValues(string name, string alias, string description, bool valueOptional = false)
    {
        string field = name.TrimStart('-');
        var option = new Option<Dictionary<string, string>>(name, alias is { Length: > 0 } ? [alias] : [])
        {
            Description = description,
            HelpName = valueOptional ? "KEY[=VALUE]" : "KEY=VALUE",
            Arity = ArgumentArity.ZeroOrMore,
            DefaultValueFactory = _ => new Dictionary<string, string>(StringComparer.Ordinal),
            CustomParser = r =>
            {
                try
                {
                    return KeyValueList.Parse(field, r.Tokens.Select(t => t.Value), valueOptional);
                }
                catch (ControlException e)
                {
                    r.AddError(e.Message);
                    return null;
                }
            },
        };
        return option;
    }

    /// <summary>A repeatable option collecting its values in order (--alias, --network).</summary>
    public static Option<string[]> Repeated(string name, string description, string helpName, params string[] aliases) => new(name, aliases)
    {
        Description = description,
        HelpName = helpName,
        Arity = ArgumentArity.ZeroOrMore,
        AllowMultipleArgumentsPerToken = false,
        DefaultValueFactory = _ => [],
    };
}
