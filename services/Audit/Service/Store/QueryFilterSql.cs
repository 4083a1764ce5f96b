using System.Data.Common;
using System.Text;

namespace SecretsBroker.Audit.Service.Store;

/// <summary>
/// The WHERE clauses of a <see cref="QueryFilter"/> that both stores write alike: the records table is aliased <c>r</c>,
/// and parameters are named <c>@name</c>, which SQLite and PostgreSQL (Npgsql) both accept.
/// </summary>
internal static class QueryFilterSql
{
    /// <summary>
    /// Completes a page query whose head (<paramref name="sql"/>: the sequences, from <c>r</c> or the prefix table <c>p</c>,
    /// with <c>@after</c> and any <c>@prefix</c> bound) the store wrote: the filters, the order and the limit; returns the sequences.
    /// </summary>
    public static List<long> ReadPage(StringBuilder sql, DbCommand command, QueryFilter filter)
    {
        AppendFilters(sql, command, filter);
        sql.Append(filter.PathPrefixHmac is null ? " ORDER BY r.sequence LIMIT @limit" : " ORDER BY p.sequence LIMIT @limit");
        Add(command, "limit", filter.Limit);
        command.CommandText = sql.ToString();
        var sequences = new List<long>();
        using var reader = command.ExecuteReader();
        while (reader.Read())
        {
            sequences.Add(reader.GetInt64(0));
        }
        return sequences;
    }

    /// <summary>Appends " AND ..." for the time window, caller, action and decision filters, and adds their parameters.</summary>
    public static void AppendFilters(StringBuilder sql, DbCommand command, QueryFilter filter)
    {
        if (filter.FromUnixNanos is { } from)
        {
            sql.Append(" AND r.event_time >= @from");
            Add(command, "from", from);
        }
        if (filter.ToUnixNanos is { } to)
        {
            sql.Append(" AND r.event_time < @to");
            Add(command, "to", to);
        }
        if (filter.Caller is { } caller)
        {
            sql.Append(" AND r.caller = @caller");
            Add(command, "caller", caller);
        }
        if (filter.Action is { } action)
        {
            sql.Append(" AND r.action = @action");
            Add(command, "action", action);
        }
        if (filter.Decision is { } decision)
        {
            sql.Append(" AND r.decision = @decision");
            Add(command, "decision", (int)decision);
        }
    }

    /// <summary>Whether a filter needs the record row itself (time, caller, action or decision), beyond the path prefix table.</summary>
    public static bool HasRecordFilter(QueryFilter filter) =>
        filter.FromUnixNanos is not null || filter.ToUnixNanos is not null || filter.Caller is not null || filter.Action is not null || filter.Decision is not null;

    public static void Add(DbCommand command, string name, object value)
    {
        var parameter = command.CreateParameter();
        parameter.ParameterName = name;
        parameter.Value = value;
        command.Parameters.Add(parameter);
    }
}
