using System.Collections.Concurrent;

namespace SecretsBroker.Broker.Tests.Infrastructure;

/// <summary>
/// Records every log line a host writes, with its structured values and any exception text, so tests
/// can prove that no secret value reaches the logs.
/// </summary>
public sealed class CapturedLogs : ILoggerProvider
{
    private readonly ConcurrentQueue<string> _lines = new();

    public IReadOnlyCollection<string> Lines => _lines;

    public ILogger CreateLogger(string categoryName) => new Logger(categoryName, _lines);

    public void Dispose()
    {
    }

    /// <summary>Fails when any captured line contains any of <paramref name="forbidden"/>.</summary>
    public void AssertNoneContain(IEnumerable<string> forbidden)
    {
        var forbiddenList = forbidden.ToList();
        Assert.NotEmpty(_lines);
        foreach (var line in _lines)
        {
            foreach (var value in forbiddenList)
            {
                Assert.False(line.Contains(value, StringComparison.Ordinal), $"a log line contains a forbidden value: {line}");
            }
        }
    }

    /// <summary>Fails when any of <paramref name="lines"/> is above Debug or holds a stack trace (issue 18: answers are not warnings).</summary>
    public static void AssertDebugAtMostWithoutStackTraces(IEnumerable<string> lines)
    {
        foreach (var line in lines)
        {
            Assert.True(line.StartsWith("Trace ", StringComparison.Ordinal) || line.StartsWith("Debug ", StringComparison.Ordinal)
                || line.StartsWith("[scope] ", StringComparison.Ordinal), $"logged above Debug: {line}");
            Assert.False(line.Contains("   at ", StringComparison.Ordinal), $"logged with a stack trace: {line}");
        }
    }

    private sealed class Logger(string category, ConcurrentQueue<string> lines) : ILogger
    {
        public IDisposable? BeginScope<TState>(TState state) where TState : notnull
        {
            lines.Enqueue($"[scope] {category}: {Describe(state)}");
            return null;
        }

        // As the built-in providers do: None means "not logged".
        public bool IsEnabled(LogLevel logLevel) => logLevel != LogLevel.None;

        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
        {
            if (!IsEnabled(logLevel))
            {
                return;
            }
            lines.Enqueue($"{logLevel} {category}: {formatter(state, exception)} | {Describe(state)} | {exception}");
        }

        private static string Describe(object? state) => state is IEnumerable<KeyValuePair<string, object?>> pairs
            ? string.Join(", ", pairs.Select(p => $"{p.Key}={p.Value}"))
            : state?.ToString() ?? "";
    }
}
