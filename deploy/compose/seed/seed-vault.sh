#!/bin/sh
# Seeds Vault (dev mode, KV v2 at secret/) with the compose demo's secrets. Every value is fake.
set -eu
until vault status >/dev/null 2>&1; do sleep 1; done
vault kv put secret/teams/demo/postgres username=demo_app password=FAKE-compose-vault-pg-v1
vault kv put secret/teams/demo/postgres username=demo_app password=FAKE-compose-vault-pg-v2
vault kv put secret/ml/registry token=FAKE-compose-vault-registry-token
echo "vault seeded"
