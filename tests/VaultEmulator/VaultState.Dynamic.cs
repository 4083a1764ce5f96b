using System.Globalization;
using System.Text.Json.Nodes;

namespace SecretsBroker.VaultEmulator;

public sealed partial class VaultState
{
    // ---- leases --------------------------------------------------------------------------------

    private bool IsLive(LeaseEntry lease, DateTimeOffset now) =>
        !lease.Revoked && now < lease.ExpireAt && (!_tokens.TryGetValue(lease.TokenId, out var token) || token.IsLive(now));

    private LeaseEntry NewLease(NamespaceState ns, string path, TokenEntry token, long ttl, long maxTtl, bool renewable, string credential)
    {
        var now = Now;
        maxTtl = maxTtl > 0 ? Math.Min(maxTtl, SystemMaxTtl) : SystemMaxTtl;
        ttl = Math.Min(ttl > 0 ? ttl : SystemMaxTtl, maxTtl);
        var lease = new LeaseEntry
        {
            Id = path + "/" + Formats.RandomId(24),
            Namespace = ns.Name,
            IssuedAt = now,
            ExpireAt = now.AddSeconds(ttl),
            MaxExpireAt = now.AddSeconds(maxTtl),
            DefaultTtl = ttl,
            Renewable = renewable,
            TokenId = token.Id,
            Credential = credential,
        };
        _leases[lease.Id] = lease;
        return lease;
    }

    /// <summary>A database or aws engine: &lt;mount&gt;/creds/&lt;role&gt; (and sts/&lt;role&gt; for aws).</summary>
    private VaultResult RouteEngine(VaultRequest r, NamespaceState ns, DynamicEngine engine, string mountPath, string rest, string path)
    {
        var read = r.Method == "GET";
        var write = r.Method is "POST" or "PUT";
        if (engine.Type == "transit")
        {
            return Transit(r, ns, engine, rest, path);
        }
        switch (engine.Type, rest.Split('/'))
        {
            case ("database", ["creds", var role]) when read || write:
                // builtin/logical/database/path_creds_create.go registers ReadOperation only: a write passes the ACL
                // check as an update, then the framework answers logical.ErrUnsupportedOperation, which
                // sdk/logical/response_util.go turns into 405 "unsupported operation".
                Authorize(r, ns, path, read ? "read" : "update");
                return read ? IssueDatabase(r, ns, engine, mountPath, role) : VaultResult.Error(405, "unsupported operation");
            case ("aws", ["creds" or "sts", var role]) when read || write:
                // builtin/logical/aws/path_user.go: "(creds|sts)/<name>" takes reads and updates alike.
                Authorize(r, ns, path, read ? "read" : "update");
                return IssueAws(r, ns, engine, mountPath, role, rest.StartsWith("sts/", StringComparison.Ordinal));
            case (_, ["creds" or "sts", _]):
                return VaultResult.Error(405, "unsupported operation");
        }
        return VaultResult.Error(404, $"no handler for route \"{path}\". route entry not found.");
    }

    private VaultResult IssueDatabase(VaultRequest r, NamespaceState ns, DynamicEngine engine, string mountPath, string roleName)
    {
        if (!engine.Roles.TryGetValue(roleName, out var role))
        {
            return VaultResult.BadRequest($"unknown role: {roleName}");
        }
        var token = _tokens[r.Token!];
        var username = $"v-{token.DisplayName.Replace('/', '-')}-{roleName}-{Formats.RandomId(20)}-{Now.ToUnixTimeSeconds()}";
        var lease = NewLease(ns, $"{mountPath}/creds/{roleName}", token, role.DefaultTtl, role.MaxTtl, renewable: true, username);
        return Envelope(new JsonObject { ["username"] = username, ["password"] = Formats.RandomId(20) }, lease);
    }

    /// <summary>
    /// builtin/logical/aws/path_user.go, pathCredsRead: the role's credential_type decides what is issued, on
    /// either path; STS credentials last "ttl" (or the role's default_sts_ttl, or 3600 s), capped at
    /// max_sts_ttl, and are not renewable (secret_access_keys.go). AWS's SDK refuses a DurationSeconds under
    /// 900 before calling STS, and Vault returns that error as a 400.
    /// </summary>
    private VaultResult IssueAws(VaultRequest r, NamespaceState ns, DynamicEngine engine, string mountPath, string roleName, bool sts)
    {
        if (!engine.Roles.TryGetValue(roleName, out var role))
        {
            return VaultResult.BadRequest($"Role \"{roleName}\" not found");
        }
        var token = _tokens[r.Token!];
        var stsType = role.CredentialType is "assumed_role" or "federation_token" or "session_token";
        var accessKey = (stsType ? "ASIA" : "AKIA") + Formats.RandomId(16).ToUpperInvariant();
        var data = new JsonObject
        {
            ["access_key"] = accessKey,
            ["secret_key"] = Formats.RandomId(40),
            ["security_token"] = stsType ? Formats.RandomId(120) : null,
        };
        var leasePath = $"{mountPath}/{(sts ? "sts" : "creds")}/{roleName}";
        if (!stsType)
        {
            return Envelope(data, NewLease(ns, leasePath, token, role.DefaultTtl, role.MaxTtl, renewable: true, accessKey));
        }
        var ttl = Formats.ParseDuration(r.Param("ttl")) ?? (role.DefaultTtl > 0 ? role.DefaultTtl : 3600);
        ttl = Math.Min(ttl, role.MaxTtl > 0 ? role.MaxTtl : SystemMaxTtl);
        if (ttl < 900)
        {
            // aws-sdk-go's generated Validate() (request.NewErrParamMinValue("DurationSeconds", 900)), formatted by
            // aws/request/validation.go and wrapped by secret_access_keys.go's "Error assuming role: %s".
            var (prefix, input) = role.CredentialType switch
            {
                "assumed_role" => ("Error assuming role", "AssumeRoleInput"),
                "federation_token" => ("Error generating STS keys", "GetFederationTokenInput"),
                _ => ("Error generating STS keys", "GetSessionTokenInput"),
            };
            return VaultResult.BadRequest($"{prefix}: InvalidParameter: 1 validation error(s) found.\n- minimum field value of 900, {input}.DurationSeconds.\n");
        }
        if (role.CredentialType == "assumed_role")
        {
            data["arn"] = $"arn:aws:sts::123456789012:assumed-role/{roleName}/vault-{Formats.RandomId(8)}";
        }
        return Envelope(data, NewLease(ns, leasePath, token, ttl, ttl, renewable: false, accessKey));
    }

    /// <summary>
    /// sys/leases/renew, in the order of vault/expiration.go (leaseEntry.renewable, then Renew's namespace check):
    /// an unknown or revoked lease is "lease not found"; an expired one is reported per <see cref="ExpiredLeases"/>;
    /// a lease of another namespace is "cannot renew a lease across namespaces". All are 400s
    /// (vault/logical_system.go, handleErrorNoReadOnlyForward: ErrInvalidRequest).
    /// </summary>
    private VaultResult RenewLease(VaultRequest r, NamespaceState ns, string path)
    {
        Authorize(r, ns, path, "update");
        var id = r.Param("lease_id");
        if (string.IsNullOrEmpty(id))
        {
            return VaultResult.BadRequest("lease_id must be specified");
        }
        var now = Now;
        if (!_leases.TryGetValue(id, out var lease) || lease.Revoked || (_tokens.TryGetValue(lease.TokenId, out var owner) && !owner.IsLive(now)))
        {
            return VaultResult.BadRequest("lease not found");
        }
        if (now >= lease.ExpireAt)
        {
            return VaultResult.BadRequest(ExpiredLeases switch
            {
                "pending_revocation" => "lease expired",
                "irrevocable" => "lease is expired and has failed previous revocation attempts",
                _ => "lease not found",
            });
        }
        if (!lease.Renewable)
        {
            return VaultResult.BadRequest("lease is not renewable");
        }
        if (lease.Namespace != ns.Name)
        {
            return VaultResult.BadRequest("cannot renew a lease across namespaces");
        }
        var requested = Formats.ParseDuration(r.Param("increment")) is > 0 and var inc ? inc : lease.DefaultTtl;
        var remaining = (long)(lease.MaxExpireAt - now).TotalSeconds;
        var ttl = Math.Min(requested, remaining);
        string[] warnings = ttl < requested
            ? [$"TTL of \"{requested}s\" exceeded the effective max_ttl of \"{remaining}s\"; TTL value is capped accordingly"]
            : [];
        lease.ExpireAt = now.AddSeconds(ttl);
        lease.LastRenewal = now;
        return Envelope(null, lease, warnings: warnings);
    }

    private VaultResult RevokeLease(VaultRequest r, NamespaceState ns, string path, string? id)
    {
        Authorize(r, ns, path, "update");
        if (string.IsNullOrEmpty(id))
        {
            return VaultResult.BadRequest("lease_id must be specified");
        }
        if (_leases.TryGetValue(id, out var lease) && lease.Namespace == ns.Name)
        {
            lease.Revoked = true;
        }
        return VaultResult.NoContent;
    }

    private VaultResult LookupLease(VaultRequest r, NamespaceState ns, string path)
    {
        Authorize(r, ns, path, "update");
        var id = r.Param("lease_id");
        var now = Now;
        if (string.IsNullOrEmpty(id) || !_leases.TryGetValue(id, out var lease) || lease.Namespace != ns.Name || !IsLive(lease, now))
        {
            return VaultResult.BadRequest("invalid lease");
        }
        return Envelope(new JsonObject
        {
            ["id"] = lease.Id,
            ["issue_time"] = Formats.Time(lease.IssuedAt),
            ["expire_time"] = Formats.Time(lease.ExpireAt),
            ["last_renewal"] = lease.LastRenewal is { } renewed ? Formats.Time(renewed) : null,
            ["renewable"] = lease.Renewable,
            ["ttl"] = (long)(lease.ExpireAt - now).TotalSeconds,
        });
    }
}
