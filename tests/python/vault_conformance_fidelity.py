"""Real-Vault behaviours the emulator must reproduce (issue 16), checked with hvac.

Each check names the Vault source it follows; the emulator cites the same file next to its code.
Mixed into vault_conformance.Conformance, which provides client(), emulator(), advance(), faults() and raises().
"""
import hvac
import hvac.exceptions as hx
import requests

ROOT = "root"
LIMITED_ROLE_ID = "limited-role-id"
LIMITED_SECRET_ID = "limited-secret-id"
NO_DEFAULT_ROLE_ID = "nodefault-role-id"
NO_DEFAULT_SECRET_ID = "nodefault-secret-id"
PROD_ROLE_ID = "prod-role-id"
PROD_SECRET_ID = "prod-secret-id"

# vault/request_handling.go checkToken: an ACL denial is a one-element go-multierror; a missing, expired or
# revoked token also carries "invalid token" (Vault 1.17+, hashicorp/vault#25953).
POLICY_DENIED = ["1 error occurred:\n\t* permission denied\n\n"]
INVALID_TOKEN = ["2 errors occurred:\n\t* permission denied\n\t* invalid token\n\n"]


def seed_additions():
    """Seed entries (merged into the base seed) that the fidelity checks rely on."""
    return {
        "policies": {
            "create-only": [{"path": "secret/data/app/*", "capabilities": ["create", "read"]}],
            "update-only": [{"path": "secret/data/app/*", "capabilities": ["update", "read"]}],
            "list-exact": [{"path": "secret/metadata/listed", "capabilities": ["list"]}],
        },
        "tokens": [
            {"id": "create-token", "policies": ["create-only"], "ttl": "24h"},
            {"id": "update-token", "policies": ["update-only"], "ttl": "24h"},
            {"id": "list-token", "policies": ["list-exact"], "ttl": "24h"},
        ],
        "aws_roles": {
            "federate": {"credential_type": "federation_token", "default_sts_ttl": 900, "max_sts_ttl": 3600},
        },
        "approle_roles": {
            "limited": {"role_id": LIMITED_ROLE_ID, "secret_ids": [LIMITED_SECRET_ID], "secret_id_num_uses": 2,
                        "token_policies": ["kv-read"], "token_ttl": "60s"},
            "expiring": {"role_id": "expiring-role-id", "secret_id_ttl": "120s", "token_policies": ["kv-read"], "token_ttl": "60s"},
            "nodefault": {"role_id": NO_DEFAULT_ROLE_ID, "secret_ids": [NO_DEFAULT_SECRET_ID],
                          "token_no_default_policy": True, "token_policies": ["kv-read"], "token_ttl": "60s"},
        },
        "auth_mounts": {
            "approle-prod": {"type": "approle", "roles": {"prod": {
                "role_id": PROD_ROLE_ID, "secret_ids": [PROD_SECRET_ID], "token_policies": ["creds"], "token_ttl": "10m"}}},
        },
        "secrets": {"db-prod": {"type": "database", "roles": {"ro": {"default_ttl": "1h", "max_ttl": "2h"}}}},
    }


def merge_seed(seed):
    extra = seed_additions()
    seed["policies"].update(extra["policies"])
    seed["tokens"].extend(extra["tokens"])
    seed["aws"]["roles"].update(extra["aws_roles"])
    seed["auth"]["approle"]["roles"].update(extra["approle_roles"])
    seed["auth"].update(extra["auth_mounts"])
    seed["secrets"] = extra["secrets"]
    return seed


class FidelityChecks:
    def leases(self):
        return {lease["lease_id"]: lease for lease in self.emulator("GET", "/__emulator/leases")["leases"]}

    # vault/request_handling.go checkToken + vault-plugin-secrets-kv path_data.go (dataExistenceCheck):
    # a write to a new key is a create, to an existing key an update.
    def create_and_update_are_separate_capabilities(self):
        creator = self.client(token="create-token").secrets.kv.v2
        creator.create_or_update_secret(path="app/created", secret={"v": "1"})
        ex = self.raises(hx.Forbidden, creator.create_or_update_secret, path="app/created", secret={"v": "2"})
        assert ex.errors == POLICY_DENIED, ex.errors
        updater = self.client(token="update-token").secrets.kv.v2
        self.raises(hx.Forbidden, updater.create_or_update_secret, path="app/not-yet", secret={"v": "1"})
        assert updater.create_or_update_secret(path="app/created", secret={"v": "2"})["data"]["version"] == 2

    # vault/acl.go AllowOperation: a LIST also matches the exact rule without the trailing slash.
    def list_matches_exact_rule_without_trailing_slash(self):
        self.client().secrets.kv.v2.create_or_update_secret(path="listed/a", secret={"x": "1"})
        for strict in (False, True):
            kv = self.client(token="list-token", strict_http=strict).secrets.kv.v2
            assert kv.list_secrets(path="listed")["data"]["keys"] == ["a"]
            self.raises(hx.Forbidden, kv.list_secrets, path="app")

    # builtin/logical/database/path_creds_create.go: ReadOperation only -> 405 for writes (after the ACL check).
    def database_creds_are_read_only(self):
        before = len(self.leases())
        client = self.client()
        for method in (client.adapter.post, client.adapter.put):
            response = method("/v1/database/creds/readonly", raise_exception=False)
            assert response.status_code == 405 and response.json() == {"errors": ["unsupported operation"]}, response.text
        self.raises(hx.Forbidden, self.client(token="creds-token").adapter.post, "/v1/database/creds/readonly")
        assert len(self.leases()) == before

    # builtin/logical/aws/path_user.go + secret_access_keys.go: STS TTL capped at max_sts_ttl; under 900 s the
    # AWS SDK's input validation fails and Vault answers 400 with its text.
    def aws_sts_ttl_limits(self):
        aws = self.client(token="creds-token").secrets.aws
        ex = self.raises(hx.InvalidRequest, aws.generate_credentials, name="assume", endpoint="sts", ttl="60s")
        assert ex.errors == ["Error assuming role: InvalidParameter: 1 validation error(s) found.\n"
                             "- minimum field value of 900, AssumeRoleInput.DurationSeconds.\n"], ex.errors
        ex = self.raises(hx.InvalidRequest, aws.generate_credentials, name="federate", endpoint="sts", ttl=899)
        assert "minimum field value of 900, GetFederationTokenInput.DurationSeconds" in ex.errors[0], ex.errors
        capped = aws.generate_credentials(name="assume", endpoint="sts", ttl="2h")
        assert capped["lease_duration"] == 3600 and capped["renewable"] is False, capped
        minimum = aws.generate_credentials(name="federate", endpoint="sts", ttl="15m")
        assert minimum["lease_duration"] == 900 and minimum["data"]["security_token"], minimum
        # The role's credential_type decides what is issued, whichever path is used.
        iam = aws.generate_credentials(name="deploy", endpoint="sts")
        assert iam["data"]["access_key"].startswith("AKIA") and iam["renewable"] is True, iam

    # builtin/credential/approle/path_login.go: the last use deletes the secret_id; then "invalid role or secret ID".
    def approle_secret_id_num_uses(self):
        for _ in range(2):
            hvac.Client(url=self.url).auth.approle.login(role_id=LIMITED_ROLE_ID, secret_id=LIMITED_SECRET_ID)
        ex = self.raises(hx.InvalidRequest, hvac.Client(url=self.url).auth.approle.login,
                         role_id=LIMITED_ROLE_ID, secret_id=LIMITED_SECRET_ID)
        assert ex.errors == ["invalid role or secret ID"], ex.errors
        issued = self.client().auth.approle.generate_secret_id(role_name="limited")["data"]
        assert issued["secret_id_num_uses"] == 2 and issued["secret_id_ttl"] == 0 and issued["secret_id_accessor"], issued
        hvac.Client(url=self.url).auth.approle.login(role_id=LIMITED_ROLE_ID, secret_id=issued["secret_id"])
        wider = self.client().adapter.post("/v1/auth/approle/role/limited/custom-secret-id",
                                           json={"secret_id": "wider", "num_uses": 5}, raise_exception=False)
        assert wider.status_code == 400 and wider.json()["errors"] == [
            "num_uses cannot be higher than the role's secret_id_num_uses"], wider.text
        once = self.client().adapter.post("/v1/auth/approle/role/limited/custom-secret-id",
                                          json={"secret_id": "FAKE-once", "num_uses": 1})["data"]
        assert once["secret_id"] == "FAKE-once" and once["secret_id_num_uses"] == 1, once
        hvac.Client(url=self.url).auth.approle.login(role_id=LIMITED_ROLE_ID, secret_id="FAKE-once")
        self.raises(hx.InvalidRequest, hvac.Client(url=self.url).auth.approle.login, role_id=LIMITED_ROLE_ID, secret_id="FAKE-once")

    # validation.go registerSecretIDEntry sets expiration_time; expired secret_ids are tidied (path_tidy_user_id.go).
    def approle_secret_id_ttl(self):
        issued = self.client().auth.approle.generate_secret_id(role_name="expiring")["data"]
        assert issued["secret_id_ttl"] == 120 and issued["secret_id_num_uses"] == 0, issued
        self.advance(60)
        hvac.Client(url=self.url).auth.approle.login(role_id="expiring-role-id", secret_id=issued["secret_id"])
        self.advance(61)
        ex = self.raises(hx.InvalidRequest, hvac.Client(url=self.url).auth.approle.login,
                         role_id="expiring-role-id", secret_id=issued["secret_id"])
        assert ex.errors == ["invalid role or secret ID"], ex.errors
        longer = self.client().adapter.post("/v1/auth/approle/role/expiring/secret-id", json={"ttl": "1h"}, raise_exception=False)
        assert longer.status_code == 400 and longer.json()["errors"] == ["ttl cannot be longer than the role's secret_id_ttl"], longer.text

    # vault-plugin-secrets-kv path_data.go validateCheckAndSetOption: mapstructure.WeakDecode of options.cas.
    def cas_given_as_string_is_decoded(self):
        kv = self.client().secrets.kv.v2
        assert kv.create_or_update_secret(path="app/cas-string", secret={"v": "1"}, cas="0")["data"]["version"] == 1
        assert kv.create_or_update_secret(path="app/cas-string", secret={"v": "2"}, cas="1")["data"]["version"] == 2
        ex = self.raises(hx.InvalidRequest, kv.create_or_update_secret, path="app/cas-string", secret={"v": "3"}, cas="1")
        assert ex.errors == ["check-and-set parameter did not match the current version"], ex.errors
        ex = self.raises(hx.InvalidRequest, kv.create_or_update_secret, path="app/cas-string", secret={"v": "3"}, cas="two")
        assert ex.errors == ["error parsing check-and-set parameter"], ex.errors
        assert kv.create_or_update_secret(path="app/cas-string", secret={"v": "3"}, cas=2.0)["data"]["version"] == 3

    # vault-plugin-secrets-kv path_data.go (pathDataWrite: a validateCheckAndSetOption failure is logical.ErrInvalidRequest,
    # HTTP 400; cas=0 matches only a key without versions) and path_config.go (pathConfigWrite: cas_required on the
    # mount applies to every key). The broker's PutSecret sends expected_version as options.cas.
    def cas_only_if_absent_and_mount_wide_cas_required(self):
        kv = self.client().secrets.kv.v2
        assert kv.create_or_update_secret(path="app/cas-absent", secret={"v": "1"}, cas=0)["data"]["version"] == 1
        ex = self.raises(hx.InvalidRequest, kv.create_or_update_secret, path="app/cas-absent", secret={"v": "2"}, cas=0)
        assert ex.errors == ["check-and-set parameter did not match the current version"], ex.errors
        raw = self.client().adapter.post("/v1/secret/data/app/cas-absent", json={"data": {"v": "2"}, "options": {"cas": 5}},
                                         raise_exception=False)
        assert raw.status_code == 400, raw.status_code
        assert raw.json() == {"errors": ["check-and-set parameter did not match the current version"]}, raw.text
        assert kv.read_secret_version(path="app/cas-absent")["data"]["metadata"]["version"] == 1
        configured = kv.configure(cas_required=True)
        assert configured.status_code == 204, configured.status_code
        try:
            assert kv.read_configuration()["data"]["cas_required"] is True
            ex = self.raises(hx.InvalidRequest, kv.create_or_update_secret, path="app/cas-new", secret={"v": "1"})
            assert ex.errors == ["check-and-set parameter required for this call"], ex.errors
            assert kv.create_or_update_secret(path="app/cas-new", secret={"v": "1"}, cas=0)["data"]["version"] == 1
            assert kv.create_or_update_secret(path="app/cas-absent", secret={"v": "2"}, cas=1)["data"]["version"] == 2
        finally:
            kv.configure(cas_required=False)
        assert kv.create_or_update_secret(path="app/cas-new", secret={"v": "2"})["data"]["version"] == 2

    # sdk/helper/tokenutil (token_no_default_policy): no "default" policy, so no lookup-self or renew-self.
    def token_without_default_policy_cannot_look_itself_up(self):
        client = hvac.Client(url=self.url)
        auth = client.auth.approle.login(role_id=NO_DEFAULT_ROLE_ID, secret_id=NO_DEFAULT_SECRET_ID)["auth"]
        assert auth["policies"] == ["kv-read"], auth
        ex = self.raises(hx.Forbidden, client.auth.token.lookup_self)
        assert ex.errors == POLICY_DENIED, ex.errors
        self.raises(hx.Forbidden, client.auth.token.renew_self)
        assert client.secrets.kv.v2.read_secret_version(path="app/seeded")["data"]["data"]["v"] == "two"

    def dead_token_and_policy_denial_differ(self):
        dead = requests.get(self.url + "/v1/secret/data/app/seeded", headers={"X-Vault-Token": "bad"}, timeout=10)
        assert dead.status_code == 403 and dead.json() == {"errors": INVALID_TOKEN}, dead.text
        denied = requests.get(self.url + "/v1/secret/data/other/hidden", headers={"X-Vault-Token": "creds-token"}, timeout=10)
        assert denied.status_code == 403 and denied.json() == {"errors": POLICY_DENIED}, denied.text
        self.faults(token_errors_before_1_17=True)
        old = requests.get(self.url + "/v1/secret/data/app/seeded", headers={"X-Vault-Token": "bad"}, timeout=10)
        assert old.status_code == 403 and old.json() == {"errors": ["permission denied"]}, old.text

    # The emulator's fault that fires after Vault did the work: the lease exists, the caller never hears of it.
    def lost_response_after_handling(self):
        creds = self.client(token="creds-token").secrets.database
        before = set(self.leases())
        self.faults(lost_response_count=1, path_prefix="database/creds/")
        self.raises(requests.exceptions.ConnectionError, creds.generate_credentials, name="readonly")
        minted = set(self.leases()) - before
        assert len(minted) == 1 and all(self.leases()[lease]["live"] for lease in minted), minted
        self.faults(lost_response_count=1, lost_response_status=502, path_prefix="database/creds/")
        self.raises(hx.BadGateway, creds.generate_credentials, name="readonly")
        assert len(set(self.leases()) - before) == 2
        assert self.emulator("GET", "/__emulator/faults")["stats"]["lost_responses"] >= 2
        # A slow way back: the lease exists before the answer arrives, and a client that gives up first never sees it.
        self.reset_faults()
        self.faults(latency_after_ms=1500, path_prefix="database/creds/")
        slow = hvac.Client(url=self.url, token="creds-token", timeout=0.5).secrets.database
        self.raises(requests.exceptions.Timeout, slow.generate_credentials, name="readonly")
        assert len(set(self.leases()) - before) == 3

    def list_verb_rejected_by_a_proxy(self):
        self.faults(reject_list_verb=True)
        response = self.client().adapter.list("/v1/secret/metadata/app", raise_exception=False)
        assert response.status_code == 405, response.text
        strict = self.client(strict_http=True).secrets.kv.v2.list_secrets(path="app")
        assert "seeded" in strict["data"]["keys"], strict

    # vault/router.go: auth methods and engines live where they are mounted.
    def auth_and_engine_mount_paths(self):
        client = hvac.Client(url=self.url)
        client.auth.approle.login(role_id=PROD_ROLE_ID, secret_id=PROD_SECRET_ID, mount_point="approle-prod")
        self.raises(hx.InvalidRequest, hvac.Client(url=self.url).auth.approle.login, role_id=PROD_ROLE_ID, secret_id=PROD_SECRET_ID)
        creds = self.client().secrets.database.generate_credentials(name="ro", mount_point="db-prod")
        assert creds["lease_id"].startswith("db-prod/creds/ro/") and creds["lease_duration"] == 3600, creds
        assert self.client().sys.renew_lease(lease_id=creds["lease_id"], increment=600)["lease_duration"] == 600
        self.raises(hx.InvalidRequest, self.client().secrets.database.generate_credentials, name="ro")
        self.raises(hx.InvalidPath, self.client().secrets.database.generate_credentials, name="ro", mount_point="nowhere")

    # vault/expiration.go: leaseEntry.renewable and Renew's namespace check.
    def lease_renewal_errors(self):
        lease_id = self.client().secrets.database.generate_credentials(name="readonly")["lease_id"]
        team = self.client(token="team-a-token", namespace="team-a")
        ex = self.raises(hx.InvalidRequest, team.sys.renew_lease, lease_id=lease_id)
        assert ex.errors == ["cannot renew a lease across namespaces"], ex.errors
        self.advance(3601)
        for state, error in [("pending_revocation", "lease expired"),
                             ("irrevocable", "lease is expired and has failed previous revocation attempts"),
                             (None, "lease not found")]:
            self.faults(expired_leases=state)
            ex = self.raises(hx.InvalidRequest, self.client().sys.renew_lease, lease_id=lease_id)
            assert ex.errors == [error], (state, ex.errors)

    FIDELITY_CHECKS = [
        "create_and_update_are_separate_capabilities", "list_matches_exact_rule_without_trailing_slash",
        "database_creds_are_read_only", "aws_sts_ttl_limits", "approle_secret_id_num_uses", "approle_secret_id_ttl",
        "cas_given_as_string_is_decoded", "token_without_default_policy_cannot_look_itself_up",
        "dead_token_and_policy_denial_differ", "lost_response_after_handling", "list_verb_rejected_by_a_proxy",
        "auth_and_engine_mount_paths", "lease_renewal_errors", "cas_only_if_absent_and_mount_wide_cas_required",
    ]
