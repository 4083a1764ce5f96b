"""Secrets and tokens the session broker serves. Every value here is fake."""

from __future__ import annotations

import base64

# Dev tokens the session broker accepts (subject -> token). Only their SHA-256 reaches the broker.
TOKEN = "py-test-FAKE-token-0001"
ROTATED_TOKEN = "py-test-FAKE-token-0002-rotated"
WRONG_TOKEN = "py-test-FAKE-token-not-configured"
# Accepted by the lease broker, whose policy lets it only read and list (no issue, renew, revoke, watch).
READ_ONLY_TOKEN = "py-test-FAKE-token-0003-read-only"
# Accepted by the lease broker, whose policy lets it issue and revoke but not renew (keep alive).
NO_RENEW_TOKEN = "py-test-FAKE-token-0004-no-renew"

MOUNT = "team"

# The lease broker's policy (see conftest.lease_broker): subject py-test may do everything,
# py-test-read-only may only read and list, py-test-no-renew may issue and revoke but not renew.
LEASE_POLICY_YAML = """\
policies:
  - name: python-lease-tests
    appliesTo: { subjects: [py-test] }
    rules:
      - paths: ['**']
        capabilities: [read, list, issue, renew, revoke, watch]
  - name: python-lease-read-only
    appliesTo: { subjects: [py-test-read-only] }
    rules:
      - paths: ['**']
        capabilities: [read, list]
  - name: python-lease-no-renew
    appliesTo: { subjects: [py-test-no-renew] }
    rules:
      - paths: ['**']
        capabilities: [read, list, issue, revoke]
"""
# Bytes that are not UTF-8, to prove binary secrets arrive byte for byte.
BINARY_VALUE = b"FAKE-CERT\x00\x01\x02\xfe\xff not a real certificate"
PAGINATION_COUNT = 12

SECRETS_YAML = f"""\
# Test secrets for the Python client tests. Every value is fake.
secrets:
  ml/training-db:
    data:
      host: postgres.test.invalid
      port: "5432"
      username: FAKE_trainer
      password: FAKE-password-not-real
  ml/model-registry:
    versions:
      - created: 2026-01-01T00:00:00Z
        data:
          token: FAKE-registry-token-v1
      - created: 2026-06-01T12:30:00Z
        data:
          token: FAKE-registry-token-v2
  ml/checkpoint-bucket:
    data:
      endpoint: https://storage.test.invalid
      access_key_id: AKIAFAKEFAKEFAKEFAKE
      secret_access_key: FAKE/secret/access/key/not/real
  certs/ca:
    binary: {base64.b64encode(BINARY_VALUE).decode()}
""" + "".join(
    f"""\
  pages/item-{i:02d}:
    data:
      n: "{i}"
"""
    for i in range(PAGINATION_COUNT)
)
