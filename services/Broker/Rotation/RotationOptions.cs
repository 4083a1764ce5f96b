namespace SecretsBroker.Broker.Rotation;

/// <summary>
/// One entry of <c>Broker:Rotation</c>: which secrets (a path glob, as in policies) rotate with which strategy, and when.
/// Example: <c>{ "Paths": "db/prod/**", "Strategy": "postgres", "Every": "30d", "Window": "02:00-04:00" }</c>.
/// </summary>
public sealed class RotationRuleOptions
{
    /// <summary>Logical-path glob (<c>*</c> one segment's characters, <c>**</c> any segments).</summary>
    public string? Paths { get; set; }

    /// <summary><c>generated</c>, <c>postgres</c> or <c>aws-managed</c>.</summary>
    public string? Strategy { get; set; }

    /// <summary>How often to rotate on schedule: <c>30d</c>, <c>12h</c>, <c>90m</c> (or a TimeSpan). Unset: only on RotateSecret.</summary>
    public string? Every { get; set; }

    /// <summary>UTC time window for scheduled rotations, <c>HH:mm-HH:mm</c> (may wrap midnight). Unset: any time.</summary>
    public string? Window { get; set; }

    /// <summary>generated: the fields to regenerate (other fields are kept).</summary>
    public List<string> Fields { get; set; } = [];

    /// <summary>The generator policy for generated fields and database passwords.</summary>
    public GeneratorPolicy Generator { get; set; } = new();

    public PostgresRotationOptions Postgres { get; set; } = new();
}

/// <summary>How new values are generated: length, alphabet, required classes, excluded characters.</summary>
public sealed class GeneratorPolicy
{
    public const string Lower = "abcdefghijklmnopqrstuvwxyz";
    public const string Upper = "ABCDEFGHIJKLMNOPQRSTUVWXYZ";
    public const string Digits = "0123456789";
    public const string Symbols = "!#$%&()*+,-.:;<=>?[]^_{|}~";

    public int Length { get; set; } = 32;

    /// <summary>The characters to draw from; unset is letters and digits (no symbols: safe in URLs and connection strings).</summary>
    public string? Alphabet { get; set; }

    /// <summary>Classes that must each appear at least once: <c>lower</c>, <c>upper</c>, <c>digit</c>, <c>symbol</c>.</summary>
    public List<string> Require { get; set; } = [];

    /// <summary>Characters never produced (removed from the alphabet and the required classes).</summary>
    public string Exclude { get; set; } = "";
}

/// <summary>postgres strategy: which mode, and where the rotation admin's credentials are.</summary>
public sealed class PostgresRotationOptions
{
    /// <summary><c>single</c> (the role changes its own password) or <c>alternating</c> (app / app_clone, AWS's multi-user scheme).</summary>
    public string Mode { get; set; } = "single";

    /// <summary>
    /// alternating: logical path of the admin secret (fields username, password, and optionally host, port, dbname), read
    /// through the broker's own mounts. Needs CREATEROLE (or superuser) to create the clone and alter both roles.
    /// </summary>
    public string? AdminSecret { get; set; }

    /// <summary>alternating: the suffix of the second role (AWS uses <c>_clone</c>).</summary>
    public string CloneSuffix { get; set; } = "_clone";

    public TimeSpan ConnectTimeout { get; set; } = TimeSpan.FromSeconds(5);
}

/// <summary><c>Broker:RotationEngine</c>: how rotations run (retries, locks, schedule limits).</summary>
public sealed class RotationEngineOptions
{
    public const string SectionName = "Broker:RotationEngine";

    /// <summary>How long a replica's rotation lock lasts without renewal (renewed every third of it while the rotation runs).</summary>
    public TimeSpan LockHold { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary>First retry delay after a failed rotation; doubles per failure up to <see cref="RetryMax"/>.</summary>
    public TimeSpan RetryBase { get; set; } = TimeSpan.FromSeconds(30);

    public TimeSpan RetryMax { get; set; } = TimeSpan.FromMinutes(30);

    /// <summary>How often the scheduler looks for due rotations and unfinished ones.</summary>
    public TimeSpan ScheduleInterval { get; set; } = TimeSpan.FromMinutes(1);

    /// <summary>Scheduled rotations running at once on the scheduling replica.</summary>
    public int MaxConcurrency { get; set; } = 2;

    /// <summary>Random delay added to each due time (spreads rotations of secrets created together).</summary>
    public TimeSpan Jitter { get; set; } = TimeSpan.FromMinutes(5);

    /// <summary>A scheduled secret counts as overdue (secretsbroker_rotation_overdue) this long after its due time.</summary>
    public TimeSpan OverdueAfter { get; set; } = TimeSpan.FromDays(1);

    /// <summary>aws-managed: how long to wait for AWS's rotation to make the new version current.</summary>
    public TimeSpan AwsManagedTimeout { get; set; } = TimeSpan.FromMinutes(5);

    /// <summary>
    /// TEST ONLY: the process kills itself right after this step of a staged rotation (1 pending stored, 2 set in the target,
    /// 3 tested, 4 promoted), to prove crash recovery. Ignored unless the host environment is <c>Testing</c>.
    /// </summary>
    public int? TestCrashAfterStep { get; set; }
}
