#!/usr/bin/env python3
"""A training job's start-up, reading its database and object-storage credentials from SecretsBroker.

It reads both secrets in one BatchGetSecrets call, checks that the fields it needs are there, builds
its connection settings and starts (here: pretends to) train. It never prints a secret value.

Configuration (flags override the environment):

    --broker / SECRETSBROKER_ADDR         broker address, e.g. broker.secrets.svc:5151 or https://...
    --token-file / SECRETSBROKER_TOKEN_FILE
                                          bearer token file (a projected service-account token is
                                          re-read on every call); or SECRETSBROKER_TOKEN
    --ca-file / SECRETSBROKER_CA_FILE     CA bundle for TLS to the broker (enables TLS)
    --db-secret / TRAINER_DB_SECRET       default kv/teams/ml/training-db
                                          fields: host, username, password (port, database optional)
    --storage-secret / TRAINER_STORAGE_SECRET
                                          default kv/teams/ml/checkpoint-bucket
                                          fields: access_key_id, secret_access_key (endpoint, bucket optional)

Exit codes: 0 started, 1 another broker error (for example a malformed path), 2 a secret is missing or incomplete, 3 not allowed (credentials, policy),
4 the broker is unavailable.

Try it against the broker's development configuration (mount `demo`, services/Broker/appsettings.Development.json)::

    SECRETSBROKER_TOKEN=<the dev token> python3 examples/trainer.py --broker 127.0.0.1:5151 \\
        --db-secret demo/ml/training-db --storage-secret demo/ml/checkpoint-bucket
"""

from __future__ import annotations

import argparse
import os
import sys
from dataclasses import dataclass, field
from typing import List, Optional, Sequence

try:
    import secretsbroker
except ImportError:  # running from a source checkout without installing the package
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "src"))
    import secretsbroker


@dataclass(frozen=True)
class DatabaseSettings:
    host: str
    port: int
    database: str
    username: str
    password: str = field(repr=False)

    def dsn(self) -> str:
        """A libpq-style connection string (contains the password: pass it to the driver, never log it)."""
        return f"host={self.host} port={self.port} dbname={self.database} user={self.username} password={self.password}"


@dataclass(frozen=True)
class StorageSettings:
    endpoint: Optional[str]
    bucket: Optional[str]
    access_key_id: str
    secret_access_key: str = field(repr=False)


class ConfigError(Exception):
    """A secret is missing or lacks a field the job needs."""


def _require(secret: secretsbroker.Secret, names: Sequence[str], what: str) -> None:
    missing = [name for name in names if not secret.get(name)]
    if missing:
        # Name the missing fields, never the values of the present ones.
        raise ConfigError(f"the {what} secret (version {secret.version}) lacks field(s): {', '.join(missing)}")


def load_settings(client: secretsbroker.Client, db_path: str, storage_path: str) -> tuple[DatabaseSettings, StorageSettings]:
    """Reads both secrets in one call and turns them into typed settings."""
    db_result, storage_result = client.batch_get([db_path, storage_path])
    for result, what in ((db_result, "database"), (storage_result, "storage")):
        if isinstance(result.error, secretsbroker.NotFound):
            raise ConfigError(f"the {what} secret does not exist (path {result.path})")
    db = db_result.unwrap()  # raises the item's error (PermissionDenied, Unavailable ...) if any
    storage = storage_result.unwrap()

    _require(db, ["host", "username", "password"], "database")
    _require(storage, ["access_key_id", "secret_access_key"], "storage")
    return (
        DatabaseSettings(
            host=db["host"],
            port=int(db.get("port") or 5432),
            database=db.get("database") or "training",
            username=db["username"],
            password=db["password"],
        ),
        StorageSettings(
            endpoint=storage.get("endpoint"),
            bucket=storage.get("bucket"),
            access_key_id=storage["access_key_id"],
            secret_access_key=storage["secret_access_key"],
        ),
    )


def train(db: DatabaseSettings, storage: StorageSettings) -> None:
    """Stands in for the real work: connect to the database, stream data, write checkpoints."""
    print(f"trainer: database {db.username}@{db.host}:{db.port}/{db.database}")
    print(f"trainer: checkpoints to {storage.endpoint or 'the default endpoint'} "
          f"bucket {storage.bucket or '(default)'} as key id {storage.access_key_id[:4]}…")
    print("trainer: training started")


def parse_args(argv: Optional[List[str]]) -> argparse.Namespace:
    env = os.environ.get
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--broker", default=env("SECRETSBROKER_ADDR", "127.0.0.1:5151"))
    parser.add_argument("--token-file", default=env("SECRETSBROKER_TOKEN_FILE"))
    parser.add_argument("--ca-file", default=env("SECRETSBROKER_CA_FILE"))
    parser.add_argument("--db-secret", default=env("TRAINER_DB_SECRET", "kv/teams/ml/training-db"))
    parser.add_argument("--storage-secret", default=env("TRAINER_STORAGE_SECRET", "kv/teams/ml/checkpoint-bucket"))
    parser.add_argument("--timeout", type=float, default=10.0, help="seconds per broker call, retries included")
    return parser.parse_args(argv)


def main(argv: Optional[List[str]] = None) -> int:
    args = parse_args(argv)
    try:
        # token_file=None falls back to $SECRETSBROKER_TOKEN_FILE, then $SECRETSBROKER_TOKEN.
        with secretsbroker.Client(args.broker, token_file=args.token_file, ca_file=args.ca_file, timeout=args.timeout) as client:
            db, storage = load_settings(client, args.db_secret, args.storage_secret)
    except ConfigError as error:
        print(f"trainer: {error}", file=sys.stderr)
        return 2
    except (secretsbroker.Unauthenticated, secretsbroker.PermissionDenied) as error:
        print(f"trainer: not allowed to read credentials: {error}", file=sys.stderr)
        return 3
    except (secretsbroker.Unavailable, secretsbroker.DeadlineExceeded) as error:
        print(f"trainer: the secrets broker is unavailable: {error}", file=sys.stderr)
        return 4
    except secretsbroker.SecretsBrokerError as error:
        print(f"trainer: reading credentials failed: {error}", file=sys.stderr)
        return 1
    train(db, storage)
    return 0


if __name__ == "__main__":
    sys.exit(main())
