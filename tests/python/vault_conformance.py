#!/usr/bin/python3
"""Vault emulator conformance: drives tests/VaultEmulator through the real hvac client.

Usage:
  vault_conformance.py write-seed DIR        writes DIR/seed.json and DIR/signing-key.pem
  vault_conformance.py run URL DIR           runs every check against the emulator at URL

The emulator must be started with --root-token root --fake-time true --seed DIR/seed.json.
Prints one line per check and a final "vault conformance: N passed, M failed"; exits 1 on failure.
"""
import json
import os
import sys
import time
import traceback

import hvac
import hvac.exceptions as hx
import jwt as pyjwt
import requests
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from vault_conformance_fidelity import INVALID_TOKEN, POLICY_DENIED, FidelityChecks, merge_seed
from vault_conformance_transit import TransitChecks, seed_transit

ROOT = "root"
ROLE_ID = "broker-role-id"
SECRET_ID = "broker-secret-id"


def write_seed(directory):
    key = ec.generate_private_key(ec.SECP256R1())
    private_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                    serialization.NoEncryption()).decode()
    public_pem = key.public_key().public_bytes(serialization.Encoding.PEM,
                                               serialization.PublicFormat.SubjectPublicKeyInfo).decode()
    with open(os.path.join(directory, "signing-key.pem"), "w") as f:
        f.write(private_pem)
    seed = {
        "policies": {
            "kv-read": [
                {"path": "secret/data/app/*", "capabilities": ["read"]},
                {"path": "secret/metadata/*", "capabilities": ["read", "list"]},
            ],
            "creds": [
                {"path": "database/creds/*", "capabilities": ["read"]},
                {"path": "aws/creds/*", "capabilities": ["read"]},
                {"path": "aws/sts/*", "capabilities": ["read", "update"]},
                {"path": "sys/leases/revoke", "capabilities": ["update"]},
            ],
        },
        "kv": {"secret": {"app/seeded": [{"v": "one"}, {"v": "two"}], "other/hidden": {"v": "x"}}},
        "database": {"roles": {"readonly": {"default_ttl": "1h", "max_ttl": "2h"}}},
        "aws": {"roles": {
            "deploy": {"credential_type": "iam_user", "default_ttl": 600, "max_ttl": 1200},
            "assume": {"credential_type": "assumed_role", "default_sts_ttl": 900, "max_sts_ttl": 3600},
        }},
        "tokens": [
            {"id": "reader-token", "policies": ["kv-read"], "ttl": "1h", "explicit_max_ttl": "2h"},
            {"id": "no-policy-token", "policies": [], "ttl": "1h"},
            {"id": "creds-token", "policies": ["creds"], "ttl": "24h"},
        ],
        "auth": {
            "approle": {"roles": {"broker": {
                "role_id": ROLE_ID, "secret_ids": [SECRET_ID], "token_policies": ["kv-read"],
                "token_ttl": "60s", "token_max_ttl": "120s"}}},
            "kubernetes": {"pem_keys": [public_pem], "roles": {"broker": {
                "bound_service_account_names": ["broker"], "bound_service_account_namespaces": ["secrets"],
                "token_policies": ["kv-read"], "token_ttl": "10m"}}},
            "jwt": {"jwt_validation_pubkeys": [public_pem], "bound_issuer": "https://issuer.test",
                    "roles": {"ci": {"bound_audiences": ["vault"], "user_claim": "sub",
                                     "token_policies": ["creds"], "token_ttl": "10m"}}},
        },
        "namespaces": {
            "team-a": {
                "kv": {"secret": {"only/in-team-a": {"team": "a"}}},
                "tokens": [{"id": "team-a-token", "policies": ["all"], "ttl": "768h"}],
                "policies": {"all": [{"path": "secret/*", "capabilities": ["read", "list"]}]},
            }
        },
    }
    with open(os.path.join(directory, "seed.json"), "w") as f:
        json.dump(seed_transit(merge_seed(seed)), f, indent=2)


class Conformance(FidelityChecks, TransitChecks):
    def __init__(self, url, directory):
        self.url = url
        with open(os.path.join(directory, "signing-key.pem")) as f:
            self.signing_key = f.read()
        self.passed = 0
        self.failed = 0

    # helpers ----------------------------------------------------------------------------------
    def client(self, token=ROOT, **kwargs):
        return hvac.Client(url=self.url, token=token, **kwargs)

    def emulator(self, method, path, body=None):
        response = requests.request(method, self.url + path, json=body, timeout=10)
        response.raise_for_status()
        return response.json()

    def advance(self, seconds):
        self.emulator("POST", "/__emulator/time", {"advance_seconds": seconds})

    def faults(self, **switches):
        return self.emulator("POST", "/__emulator/faults", switches)

    def reset_faults(self):
        self.emulator("DELETE", "/__emulator/faults")

    def sign(self, claims):
        now = int(time.time())
        body = {"iat": now, "exp": now + 86400 * 400}
        body.update(claims)
        return pyjwt.encode(body, self.signing_key, algorithm="ES256")

    def check(self, name, fn):
        try:
            fn()
            self.passed += 1
            print(f"PASS {name}")
        except Exception:  # noqa: BLE001 - report every failure and continue
            self.failed += 1
            print(f"FAIL {name}")
            traceback.print_exc()
        finally:
            try:
                self.reset_faults()
            except Exception:  # noqa: BLE001
                pass

    @staticmethod
    def raises(exception_type, fn, *args, **kwargs):
        try:
            fn(*args, **kwargs)
        except exception_type as ex:
            return ex
        raise AssertionError(f"expected {exception_type.__name__}")

    # checks -----------------------------------------------------------------------------------
    def health_get(self):
        status = self.client().sys.read_health_status(method="GET")
        assert status["initialized"] is True and status["sealed"] is False and status["standby"] is False, status
        assert "version" in status and "cluster_id" in status, status

    def health_head(self):
        response = self.client().sys.read_health_status(method="HEAD")
        assert response.status_code == 200 and response.text == "", response

    def health_sealed(self):
        self.faults(sealed=True)
        response = self.client().sys.read_health_status(method="GET")
        assert response.status_code == 503 and response.json()["sealed"] is True, response
        head = self.client().sys.read_health_status(method="HEAD")
        assert head.status_code == 503
        assert self.client().sys.read_seal_status()["sealed"] is True

    def sealed_read_is_vault_down(self):
        self.faults(sealed=True)
        ex = self.raises(hx.VaultDown, self.client().secrets.kv.v2.read_secret_version, path="app/seeded")
        assert ex.errors == ["Vault is sealed"], ex.errors

    def kv_write_and_cas(self):
        kv = self.client().secrets.kv.v2
        first = kv.create_or_update_secret(path="app/cas", secret={"password": "p1"}, cas=0)
        assert first["data"]["version"] == 1 and first["data"]["destroyed"] is False, first
        assert set(first) >= {"request_id", "lease_id", "renewable", "lease_duration", "data", "wrap_info", "warnings", "auth"}
        second = kv.create_or_update_secret(path="app/cas", secret={"password": "p2"}, cas=1)
        assert second["data"]["version"] == 2, second
        ex = self.raises(hx.InvalidRequest, kv.create_or_update_secret, path="app/cas", secret={"password": "p3"}, cas=1)
        assert ex.errors == ["check-and-set parameter did not match the current version"], ex.errors
        third = kv.create_or_update_secret(path="app/cas", secret={"password": "p3"})
        assert third["data"]["version"] == 3

    def kv_read_versions(self):
        kv = self.client().secrets.kv.v2
        latest = kv.read_secret_version(path="app/seeded")
        assert latest["data"]["data"] == {"v": "two"} and latest["data"]["metadata"]["version"] == 2, latest
        first = kv.read_secret_version(path="app/seeded", version=1)
        assert first["data"]["data"] == {"v": "one"} and first["data"]["metadata"]["deletion_time"] == ""
        self.raises(hx.InvalidPath, kv.read_secret_version, path="app/seeded", version=9)
        ex = self.raises(hx.InvalidPath, kv.read_secret_version, path="app/missing")
        assert ex.errors == [], ex.errors

    def kv_deleted_and_destroyed_versions(self):
        client = self.client()
        kv = client.secrets.kv.v2
        kv.create_or_update_secret(path="app/del", secret={"a": "1"})
        kv.create_or_update_secret(path="app/del", secret={"a": "2"})
        kv.delete_latest_version_of_secret(path="app/del")
        self.raises(hx.InvalidPath, kv.read_secret_version, path="app/del")
        raw = client.adapter.get("/v1/secret/data/app/del", raise_exception=False)
        body = raw.json()
        assert raw.status_code == 404 and body["data"]["data"] is None, body
        assert body["data"]["metadata"]["deletion_time"] != "" and body["data"]["metadata"]["version"] == 2, body
        kv.destroy_secret_versions(path="app/del", versions=[1])
        raw = client.adapter.get("/v1/secret/data/app/del", params={"version": 1}, raise_exception=False)
        assert raw.status_code == 404 and raw.json()["data"]["metadata"]["destroyed"] is True, raw.text
        kv.undelete_secret_versions(path="app/del", versions=[2])
        assert kv.read_secret_version(path="app/del")["data"]["data"] == {"a": "2"}
        kv.delete_secret_versions(path="app/del", versions=[2])
        self.raises(hx.InvalidPath, kv.read_secret_version, path="app/del", version=2)

    def kv_list(self):
        kv = self.client().secrets.kv.v2
        kv.create_or_update_secret(path="tree/b/leaf", secret={"x": "1"})
        kv.create_or_update_secret(path="tree/a", secret={"x": "1"})
        listed = kv.list_secrets(path="tree")
        assert listed["data"]["keys"] == ["a", "b/"], listed
        strict = self.client(strict_http=True).secrets.kv.v2.list_secrets(path="tree")
        assert strict["data"]["keys"] == ["a", "b/"], strict
        root = kv.list_secrets(path="")
        assert "app/" in root["data"]["keys"] and "tree/" in root["data"]["keys"], root
        self.raises(hx.InvalidPath, kv.list_secrets, path="nothing-here")

    def kv_metadata(self):
        kv = self.client().secrets.kv.v2
        meta = kv.read_secret_metadata(path="app/seeded")["data"]
        assert meta["current_version"] == 2 and meta["oldest_version"] == 1, meta
        assert sorted(meta["versions"]) == ["1", "2"] and meta["versions"]["1"]["destroyed"] is False, meta
        kv.update_metadata(path="app/seeded", max_versions=5, cas_required=True)
        meta = kv.read_secret_metadata(path="app/seeded")["data"]
        assert meta["max_versions"] == 5 and meta["cas_required"] is True, meta
        ex = self.raises(hx.InvalidRequest, kv.create_or_update_secret, path="app/seeded", secret={"v": "three"})
        assert ex.errors == ["check-and-set parameter required for this call"], ex.errors
        self.raises(hx.InvalidPath, kv.read_secret_metadata, path="app/none")
        kv.create_or_update_secret(path="app/gone", secret={"x": "1"})
        kv.delete_metadata_and_all_versions(path="app/gone")
        self.raises(hx.InvalidPath, kv.read_secret_metadata, path="app/gone")

    def policy_denies(self):
        reader = self.client(token="reader-token").secrets.kv.v2
        assert reader.read_secret_version(path="app/seeded")["data"]["data"]["v"] == "two"
        ex = self.raises(hx.Forbidden, reader.read_secret_version, path="other/hidden")
        assert ex.errors == POLICY_DENIED, ex.errors
        self.raises(hx.Forbidden, reader.create_or_update_secret, path="app/seeded", secret={"v": "x"})
        nobody = self.client(token="no-policy-token")
        self.raises(hx.Forbidden, nobody.secrets.kv.v2.read_secret_version, path="app/seeded")
        self.raises(hx.Forbidden, nobody.secrets.database.generate_credentials, name="readonly")
        self.raises(hx.Forbidden, self.client(token="not-a-token").auth.token.lookup_self)
        # The default policy still grants token self-lookup.
        assert nobody.auth.token.lookup_self()["data"]["policies"] == ["default"]

    def error_body_format(self):
        response = requests.get(self.url + "/v1/secret/data/app/seeded", headers={"X-Vault-Token": "bad"}, timeout=10)
        assert response.status_code == 403 and response.json() == {"errors": INVALID_TOKEN}, response.text

    def token_lookup_and_renew(self):
        client = self.client(token="reader-token")
        looked = client.auth.token.lookup_self()["data"]
        assert looked["id"] == "reader-token" and looked["ttl"] == 3600 and looked["renewable"] is True, looked
        assert looked["policies"] == ["default", "kv-read"] and looked["expire_time"], looked
        self.advance(600)
        assert client.auth.token.lookup_self()["data"]["ttl"] == 3000
        renewed = client.auth.token.renew_self()
        assert renewed["auth"]["client_token"] == "reader-token" and renewed["auth"]["lease_duration"] == 3600, renewed
        assert client.auth.token.lookup_self()["data"]["ttl"] == 3600
        # explicit_max_ttl 2h: 600s passed, so a 2h increment is capped at 6600s with a warning.
        capped = client.auth.token.renew_self(increment="2h")
        assert capped["auth"]["lease_duration"] == 6600 and capped["warnings"], capped
        root = self.client().auth.token.lookup_self()["data"]
        assert root["policies"] == ["root"] and root["expire_time"] is None and root["ttl"] == 0, root

    def token_expires(self):
        client = self.client()
        auth = client.auth.approle.login(role_id=ROLE_ID, secret_id=SECRET_ID, use_token=False)["auth"]
        scoped = self.client(token=auth["client_token"])
        assert scoped.auth.token.lookup_self()["data"]["ttl"] == 60
        self.advance(61)
        self.raises(hx.Forbidden, scoped.auth.token.lookup_self)

    def token_renewal_capped_by_role_max_ttl(self):
        auth = self.client().auth.approle.login(role_id=ROLE_ID, secret_id=SECRET_ID, use_token=False)["auth"]
        scoped = self.client(token=auth["client_token"])
        self.advance(50)
        assert scoped.auth.token.renew_self()["auth"]["lease_duration"] == 60
        self.advance(50)
        renewed = scoped.auth.token.renew_self()
        assert renewed["auth"]["lease_duration"] == 20 and renewed["warnings"], renewed
        self.advance(21)
        self.raises(hx.Forbidden, scoped.auth.token.renew_self)

    def renew_refused_fault(self):
        self.faults(renew_self_refused=True)
        self.raises(hx.Forbidden, self.client(token="reader-token").auth.token.renew_self)

    def approle_login(self):
        client = hvac.Client(url=self.url)
        result = client.auth.approle.login(role_id=ROLE_ID, secret_id=SECRET_ID)
        auth = result["auth"]
        assert auth["lease_duration"] == 60 and auth["renewable"] is True, auth
        assert auth["policies"] == ["default", "kv-read"] and auth["metadata"] == {"role_name": "broker"}, auth
        assert client.is_authenticated()
        assert client.secrets.kv.v2.read_secret_version(path="app/seeded")["data"]["data"]["v"] == "two"
        self.raises(hx.Forbidden, client.secrets.kv.v2.read_secret_version, path="other/hidden")
        ex = self.raises(hx.InvalidRequest, hvac.Client(url=self.url).auth.approle.login, role_id=ROLE_ID, secret_id="wrong")
        assert ex.errors == ["invalid role or secret ID"], ex.errors

    def kubernetes_login(self):
        client = hvac.Client(url=self.url)
        token = self.sign({"iss": "kubernetes/serviceaccount", "sub": "system:serviceaccount:secrets:broker",
                           "kubernetes.io/serviceaccount/namespace": "secrets",
                           "kubernetes.io/serviceaccount/service-account.name": "broker"})
        result = client.auth.kubernetes.login(role="broker", jwt=token)
        assert result["auth"]["metadata"]["service_account_name"] == "broker", result
        assert client.secrets.kv.v2.read_secret_version(path="app/seeded")["data"]["data"]["v"] == "two"
        wrong = self.sign({"sub": "system:serviceaccount:other:broker"})
        self.raises(hx.Forbidden, hvac.Client(url=self.url).auth.kubernetes.login, role="broker", jwt=wrong)
        forged = token[:-4] + ("AAAA" if not token.endswith("AAAA") else "BBBB")
        self.raises(hx.Forbidden, hvac.Client(url=self.url).auth.kubernetes.login, role="broker", jwt=forged)

    def jwt_login(self):
        client = hvac.Client(url=self.url)
        token = self.sign({"iss": "https://issuer.test", "aud": "vault", "sub": "pipeline-7"})
        result = client.auth.jwt.jwt_login(role="ci", jwt=token)
        assert result["auth"]["policies"] == ["creds", "default"], result
        creds = client.secrets.database.generate_credentials(name="readonly")
        assert creds["data"]["username"], creds
        self.raises(hx.Forbidden, client.secrets.kv.v2.read_secret_version, path="app/seeded")
        wrong_aud = self.sign({"iss": "https://issuer.test", "aud": "other", "sub": "pipeline-7"})
        self.raises(hx.InvalidRequest, hvac.Client(url=self.url).auth.jwt.jwt_login, role="ci", jwt=wrong_aud)
        self.raises(hx.InvalidRequest, hvac.Client(url=self.url).auth.jwt.jwt_login, role="nope", jwt=token)

    def database_creds_renew_revoke(self):
        client = self.client(token="creds-token")
        creds = client.secrets.database.generate_credentials(name="readonly")
        lease_id = creds["lease_id"]
        assert lease_id.startswith("database/creds/readonly/") and creds["renewable"] is True, creds
        assert creds["lease_duration"] == 3600 and creds["data"]["password"], creds
        self.advance(1800)
        looked = client.sys.read_lease(lease_id=lease_id)["data"]
        assert looked["ttl"] == 1800 and looked["renewable"] is True, looked
        renewed = client.sys.renew_lease(lease_id=lease_id, increment=3600)
        assert renewed["lease_id"] == lease_id and renewed["lease_duration"] == 3600 and renewed["renewable"] is True, renewed
        self.advance(3000)
        capped = client.sys.renew_lease(lease_id=lease_id, increment=3600)
        assert capped["lease_duration"] == 2400 and capped["warnings"], capped
        client.sys.revoke_lease(lease_id=lease_id)
        self.raises(hx.InvalidRequest, client.sys.read_lease, lease_id=lease_id)
        self.raises(hx.InvalidRequest, client.sys.renew_lease, lease_id=lease_id)
        leases = {l["lease_id"]: l for l in self.emulator("GET", "/__emulator/leases")["leases"]}
        assert leases[lease_id]["revoked"] is True and leases[lease_id]["live"] is False

    def lease_expires(self):
        client = self.client(token="creds-token")
        creds = client.secrets.database.generate_credentials(name="readonly")
        self.advance(3601)
        ex = self.raises(hx.InvalidRequest, client.sys.renew_lease, lease_id=creds["lease_id"])
        assert ex.errors == ["lease not found"], ex.errors
        leases = {l["lease_id"]: l for l in self.emulator("GET", "/__emulator/leases")["leases"]}
        assert leases[creds["lease_id"]]["live"] is False and leases[creds["lease_id"]]["revoked"] is False
        self.raises(hx.InvalidRequest, client.secrets.database.generate_credentials, name="unknown-role")

    def aws_creds(self):
        client = self.client(token="creds-token")
        creds = client.secrets.aws.generate_credentials(name="deploy")
        assert creds["data"]["access_key"].startswith("AKIA") and creds["data"]["security_token"] is None, creds
        assert creds["lease_id"].startswith("aws/creds/deploy/") and creds["renewable"] and creds["lease_duration"] == 600
        assert client.sys.renew_lease(lease_id=creds["lease_id"])["lease_duration"] == 600
        client.sys.revoke_lease(lease_id=creds["lease_id"])
        self.raises(hx.InvalidRequest, client.sys.read_lease, lease_id=creds["lease_id"])

    def aws_sts(self):
        client = self.client(token="creds-token")
        sts = client.secrets.aws.generate_credentials(name="assume", endpoint="sts", ttl="30m")
        assert sts["data"]["access_key"].startswith("ASIA") and sts["data"]["security_token"], sts
        assert sts["lease_duration"] == 1800 and sts["renewable"] is False, sts
        ex = self.raises(hx.InvalidRequest, client.sys.renew_lease, lease_id=sts["lease_id"])
        assert ex.errors == ["lease is not renewable"], ex.errors

    def namespaces(self):
        team = self.client(token="team-a-token", namespace="team-a")
        assert team.secrets.kv.v2.read_secret_version(path="only/in-team-a")["data"]["data"] == {"team": "a"}
        assert team.secrets.kv.v2.list_secrets(path="")["data"]["keys"] == ["only/"]
        self.raises(hx.InvalidPath, self.client().secrets.kv.v2.read_secret_version, path="only/in-team-a")
        root_in_team = self.client(namespace="team-a")
        assert root_in_team.secrets.kv.v2.read_secret_version(path="only/in-team-a")["data"]["data"]["team"] == "a"
        self.raises(hx.Forbidden, self.client(token="team-a-token").auth.token.lookup_self)

    def rate_limit_burst(self):
        self.faults(rate_limit_count=2, retry_after_seconds=1, path_prefix="secret/")
        kv = self.client().secrets.kv.v2
        ex = self.raises(hx.RateLimitExceeded, kv.read_secret_version, path="app/seeded")
        assert "rate limit quota exceeded" in ex.errors[0], ex.errors
        raw = requests.get(self.url + "/v1/secret/data/app/seeded", headers={"X-Vault-Token": ROOT}, timeout=10)
        assert raw.status_code == 429 and raw.headers["Retry-After"] == "1"
        assert kv.read_secret_version(path="app/seeded")["data"]["metadata"]["version"] == 2

    def dropped_connection(self):
        self.faults(drop_count=1)
        self.raises(requests.exceptions.ConnectionError, self.client().secrets.kv.v2.read_secret_version, path="app/seeded")
        assert self.client().secrets.kv.v2.read_secret_version(path="app/seeded")["data"]["metadata"]["version"] == 2

    def added_latency(self):
        self.faults(latency_ms=300)
        started = time.monotonic()
        self.client().sys.read_health_status(method="GET")
        assert time.monotonic() - started >= 0.3

    def run(self):
        for name in [
            "health_get", "health_head", "health_sealed", "sealed_read_is_vault_down", "kv_write_and_cas",
            "kv_read_versions", "kv_deleted_and_destroyed_versions", "kv_list", "kv_metadata", "policy_denies",
            "error_body_format", "token_lookup_and_renew", "token_expires", "token_renewal_capped_by_role_max_ttl",
            "renew_refused_fault", "approle_login", "kubernetes_login", "jwt_login", "database_creds_renew_revoke",
            "lease_expires", "aws_creds", "aws_sts", "namespaces", "rate_limit_burst", "dropped_connection",
            "added_latency",
        ] + self.FIDELITY_CHECKS + self.TRANSIT_CHECKS:
            self.check(name, getattr(self, name))
        print(f"vault conformance: {self.passed} passed, {self.failed} failed")
        return 1 if self.failed else 0


def main(argv):
    if len(argv) == 3 and argv[1] == "write-seed":
        write_seed(argv[2])
        return 0
    if len(argv) == 4 and argv[1] == "run":
        return Conformance(argv[2], argv[3]).run()
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
