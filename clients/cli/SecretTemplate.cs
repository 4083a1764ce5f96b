using System.Text;
using System.Text.Json;
using HandlebarsDotNet;
using HandlebarsDotNet.Compiler;
using HandlebarsDotNet.IO;
using SecretsBroker.V1;

namespace SecretsBroker.Cli;

/// <summary>
/// A Handlebars template (Handlebars.Net) with two helpers that read through the broker:
/// <c>{{secret "kv/app/db" "password"}}</c> (one field), <c>{{secret "kv/app/db"}}</c> (the fields as an
/// object, for <c>{{#with (secret "kv/app/db")}}{{username}}{{/with}}</c> or <c>#each</c>; printed as is: a
/// JSON object, or base64 for binary data) and the same with <c>lease "ROLE"</c> for dynamic credentials.
/// Output is not HTML-escaped (these are config files), and an unknown name or field is an error rather than
/// an empty string, so a typo never renders a config with a blank password.
/// </summary>
internal sealed class SecretTemplate
{
    private readonly HandlebarsTemplate<object, object> _template;
    private readonly SecretSource _source;

    private SecretTemplate(HandlebarsTemplate<object, object> template, SecretSource source)
    {
        _template = template;
        _source = source;
    }

    /// <summary>Compiles the template, or throws <see cref="MaterializeException"/> with the parser's message.</summary>
    public static SecretTemplate Compile(string text, SecretSource source)
    {
        var configuration = new HandlebarsConfiguration { NoEscape = true, ThrowOnUnresolvedBindingExpression = true };
        configuration.FormatterProviders.Add(new FieldMapFormatter());
        var handlebars = Handlebars.Create(configuration);
        handlebars.RegisterHelper("secret", (in HelperOptions _, in Context _, in Arguments arguments) =>
            Value("secret", arguments, source.Secret, secret => Fields(secret.Data, secret.BinaryData.IsEmpty ? null : secret.BinaryData.ToBase64())));
        handlebars.RegisterHelper("lease", (in HelperOptions _, in Context _, in Arguments arguments) =>
            Value("lease", arguments, source.Lease, lease => Fields(lease.Credentials, null)));
        try
        {
            return new SecretTemplate(handlebars.Compile(text), source);
        }
        catch (HandlebarsException ex)
        {
            throw TemplateError(ex);
        }
    }

    /// <summary>Renders with the broker's values, fetching what the template references until nothing is missing.</summary>
    public Task<byte[]> RenderAsync(CancellationToken cancellationToken) =>
        RenderAsync(_source, () => Encoding.UTF8.GetBytes(_template(new object())), cancellationToken);

    /// <summary>
    /// Runs <paramref name="render"/> against <paramref name="source"/>, fetching whatever it found missing and running it
    /// again, until it referenced nothing missing (a template may reference a secret only in a branch another one opens).
    /// </summary>
    public static async Task<T> RenderAsync<T>(SecretSource source, Func<T> render, CancellationToken cancellationToken)
    {
        const int MaxRounds = 16;
        for (var round = 1; ; round++)
        {
            source.BeginRender();
            T result;
            try
            {
                result = render();
            }
            catch (Exception ex) when (ex is HandlebarsException or HandlebarsUndefinedBindingException or MaterializeException && source.HasMissing)
            {
                // An unfetched secret was an empty placeholder; fetch it and render again.
                result = default!;
            }
            catch (HandlebarsException ex)
            {
                throw Unwrap(ex) ?? TemplateError(ex);
            }
            catch (HandlebarsUndefinedBindingException ex)
            {
                throw new MaterializeException(ExitCodes.TemplateError, "TEMPLATE_ERROR", $"template: '{ex.MissingKey}' is undefined (a misspelt field or name?)");
            }
            if (!source.HasMissing)
            {
                return result;
            }
            if (round == MaxRounds)
            {
                throw new MaterializeException(ExitCodes.TemplateError, "TEMPLATE_ERROR", $"the template still references new secrets after {MaxRounds} rounds of reading");
            }
            await source.FetchMissingAsync(cancellationToken).ConfigureAwait(false);
        }
    }

    private static object Value<T>(string helper, Arguments arguments, Func<string, T?> lookup, Func<T, FieldMap> fields)
        where T : class
    {
        if (arguments.Length is < 1 or > 2 || arguments.AsEnumerable().Any(a => a is not string { Length: > 0 }))
        {
            throw new MaterializeException(ExitCodes.TemplateError, "TEMPLATE_ERROR",
                $"{helper} takes a path and an optional field, both quoted: {{{{{helper} \"kv/app/db\" \"password\"}}}}");
        }
        var name = (string)arguments[0]!;
        if (lookup(name) is not { } found)
        {
            return arguments.Length == 1 ? new FieldMap(new Dictionary<string, string>(), null) : "";
        }
        var map = fields(found);
        if (arguments.Length == 1)
        {
            return map;
        }
        var field = (string)arguments[1]!;
        if (map.Fields.TryGetValue(field, out var value))
        {
            return value;
        }
        // Field names are not secret; values never appear in errors.
        var known = map.Fields.Count == 0 ? "it holds binary data only (use {{" + helper + " \"" + name + "\"}} for base64)" : "its fields: " + string.Join(", ", map.Fields.Keys.Order(StringComparer.Ordinal));
        throw new MaterializeException(ExitCodes.NotFound, "NOT_FOUND", $"{helper} '{name}' has no field '{field}'; {known}");
    }

    private static FieldMap Fields(IDictionary<string, string> fields, string? base64) => new(new Dictionary<string, string>(fields, StringComparer.Ordinal), base64);

    private static MaterializeException? Unwrap(Exception ex)
    {
        for (Exception? inner = ex; inner is not null; inner = inner.InnerException)
        {
            if (inner is MaterializeException materialize)
            {
                return materialize;
            }
        }
        return null;
    }

    private static MaterializeException TemplateError(Exception ex) =>
        new(ExitCodes.TemplateError, "TEMPLATE_ERROR", $"template: {ex.Message.Trim()}");

    /// <summary>Writes a <see cref="FieldMap"/> printed bare as its JSON (Handlebars would otherwise enumerate the dictionary).</summary>
    private sealed class FieldMapFormatter : IFormatterProvider, IFormatter
    {
        public bool TryCreateFormatter(Type type, out IFormatter formatter)
        {
            formatter = this;
            return type == typeof(FieldMap);
        }

        public void Format<T>(T value, in EncodedTextWriter writer) => writer.Write(value!.ToString()!, false);
    }

    /// <summary>A secret's fields: member access and #each see the fields; printed bare it is their JSON (or base64 of binary data).</summary>
    internal sealed class FieldMap(Dictionary<string, string> fields, string? base64) : Dictionary<string, string>(fields, StringComparer.Ordinal)
    {
        public IReadOnlyDictionary<string, string> Fields => this;

        public override string ToString() => base64 ?? JsonSerializer.Serialize(fields, CliJsonContext.Relaxed.DictionaryStringString);
    }
}
