#!/usr/bin/env python3
"""A training job reading its database and object-storage credentials from SecretsBroker.

It reads both secrets in one BatchGetSecrets call, checks that the fields it needs are there, builds
its connection settings and starts (here: pretends to) train. It never prints a secret value.

With ``--db-role`` the database user and password are dynamic credentials instead: the job takes a
lease on that role (``client.lease``) and holds it for as long as it trains. The broker renews the
lease in the background and, near its max TTL, rotates it; the job then reconnects with the new
credentials at its next step (the old ones stay valid for the broker's rotation overlap). When the job
ends, finishes or is stopped (SIGTERM, as a scheduler preempting it would send, or Ctrl-C), leaving the
``with`` block revokes the lease, so no credentials outlive the job. The database secret then only
needs the connection fields (host, optional port and database).

Configuration (flags override the environment):

    --broker / SECRETSBROKER_ADDRESS      broker address, e.g. broker.secrets.svc:5151 or https://...
    --token-file / SECRETSBROKER_TOKEN_FILE
                                          bearer token file (a projected service-account token is
                                          re-read on every call); or SECRETSBROKER_TOKEN
    --ca-file / SECRETSBROKER_CA_FILE     CA bundle for TLS to the broker (enables TLS)
    --db-secret / TRAINER_DB_SECRET       default kv/teams/ml/training-db
                                          fields: host, username, password (port, database optional)
    --storage-secret / TRAINER_STORAGE_SECRET
                                          default kv/teams/ml/checkpoint-bucket
                                          fields: access_key_id, secret_access_key (endpoint, bucket optional)
    --db-role / TRAINER_DB_ROLE           a vault-dynamic role, e.g. db/readonly: database user and
                                          password from a lease held for the whole job (default: none,
                                          they come from the database secret)
    --train-seconds / TRAINER_SECONDS     how long to train, in steps of --step-seconds (default 0: start
                                          and return, as a smoke test of the configuration)

Exit codes: 0 trained (or stopped by SIGTERM/SIGINT), 1 another broker error (for example a malformed path),
2 a secret is missing or incomplete, 3 not allowed (credentials, policy), 4 the broker is unavailable,
5 the database lease was lost (revoked or expired) while training.

Try it against the broker's development configuration (mount `demo`, services/Broker/appsettings.Development.json)::

    SECRETSBROKER_TOKEN=<the dev token> python3 examples/trainer.py --broker 127.0.0.1:5151 \\
        --db-secret demo/ml/training-db --storage-secret demo/ml/checkpoint-bucket

and with dynamic database credentials from a `vault-dynamic` mount `db` (role `readonly`)::

    SECRETSBROKER_TOKEN=<the dev token> python3 examples/trainer.py --broker 127.0.0.1:5151 \\
        --db-role db/readonly --db-secret kv/teams/ml/training-db --train-seconds 3600
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import signal
import sys
import threading
import time
from dataclasses import dataclass, field
from typing import Callable, List, Mapping, Optional, Sequence

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


def load_settings(
    client: secretsbroker.Client,
    db_path: str,
    storage_path: str,
    db_credentials: Optional[Mapping[str, str]] = None,
) -> tuple[DatabaseSettings, StorageSettings]:
    """Reads both secrets in one call and turns them into typed settings.

    ``db_credentials`` (``username``, ``password``, from a lease) replace the database secret's own.
    """
    db_result, storage_result = client.batch_get([db_path, storage_path])
    for result, what in ((db_result, "database"), (storage_result, "storage")):
        if isinstance(result.error, secretsbroker.NotFound):
            raise ConfigError(f"the {what} secret does not exist (path {result.path})")
    db = db_result.unwrap()  # raises the item's error (PermissionDenied, Unavailable ...) if any
    storage = storage_result.unwrap()

    _require(db, ["host"] if db_credentials is not None else ["host", "username", "password"], "database")
    _require(storage, ["access_key_id", "secret_access_key"], "storage")
    login = db_credentials if db_credentials is not None else db.data
    return (
        DatabaseSettings(
            host=db["host"],
            port=int(db.get("port") or 5432),
            database=db.get("database") or "training",
            username=login["username"],
            password=login["password"],
        ),
        StorageSettings(
            endpoint=storage.get("endpoint"),
            bucket=storage.get("bucket"),
            access_key_id=storage["access_key_id"],
            secret_access_key=storage["secret_access_key"],
        ),
    )


def train(
    database: Callable[[], DatabaseSettings],
    storage: StorageSettings,
    seconds: float = 0.0,
    step_seconds: float = 0.5,
    stop: Optional[threading.Event] = None,
) -> bool:
    """Stands in for the real work: connect to the database, stream data, write checkpoints.

    ``database()`` returns the settings to use now; it is asked again at every step, so rotated
    credentials are picked up. Returns False when ``stop`` ended the training early.
    """
    db = database()
    print(f"trainer: database {db.username}@{db.host}:{db.port}/{db.database}", flush=True)
    print(f"trainer: checkpoints to {storage.endpoint or 'the default endpoint'} "
          f"bucket {storage.bucket or '(default)'} as key id {storage.access_key_id[:4]}…", flush=True)
    print("trainer: training started", flush=True)
    stop = stop or threading.Event()
    deadline = time.monotonic() + seconds
    steps = 0
    while time.monotonic() < deadline:
        if stop.wait(min(step_seconds, max(0.0, deadline - time.monotonic()))):
            print(f"trainer: stopping early after {steps} step(s)", flush=True)
            return False
        db = database()  # a real job would read a batch through its connection pool here
        steps += 1
    if seconds > 0:
        print(f"trainer: training finished after {steps} step(s)", flush=True)
    return True


def train_with_leased_database(
    client: secretsbroker.Client,
    args: argparse.Namespace,
    stop: threading.Event,
) -> bool:
    """Holds a lease on ``args.db_role`` for the whole training, following rotations; revokes it at the end."""
    rotated = threading.Event()
    # on_rotate runs on the lease keeper's thread: only flag the change, and let the training loop
    # reconnect at its next step (the old credentials stay valid for the broker's rotation overlap).
    with client.lease(args.db_role, on_rotate=lambda lease: rotated.set()) as lease:
        db, storage = load_settings(client, args.db_secret, args.storage_secret, db_credentials=lease.credentials)
        expires = f"{lease.expires_at:%H:%M:%S} UTC" if lease.expires_at else "unknown"
        print(f"trainer: holding a database lease on {args.db_role} (expires {expires} unless the broker renews it)", flush=True)

        def current() -> DatabaseSettings:
            nonlocal db
            if rotated.is_set():
                rotated.clear()
                credentials = lease.credentials  # raises LeaseLost if the lease was revoked or expired meanwhile
                db = dataclasses.replace(db, username=credentials["username"], password=credentials["password"])
                print(f"trainer: database credentials rotated; reconnecting as {db.username}", flush=True)
            elif not lease.active:
                _ = lease.credentials  # raises LeaseLost with the reason
            return db

        finished = train(current, storage, args.train_seconds, args.step_seconds, stop)
    if lease.revoke_error is None:
        print("trainer: database lease revoked", flush=True)
    else:  # the broker revokes it itself once its grace period is over
        print(f"trainer: could not revoke the database lease ({lease.revoke_error}); the broker will", file=sys.stderr, flush=True)
    return finished


def parse_args(argv: Optional[List[str]]) -> argparse.Namespace:
    env = os.environ.get
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    # Unset flags fall back to the client's own environment: SECRETSBROKER_ADDRESS, SECRETSBROKER_TOKEN_FILE
    # (else SECRETSBROKER_TOKEN) and SECRETSBROKER_CA_FILE, the spelling every SecretsBroker client uses.
    parser.add_argument("--broker", default=None, help="default: $SECRETSBROKER_ADDRESS")
    parser.add_argument("--token-file", default=None, help="default: $SECRETSBROKER_TOKEN_FILE, else the token in $SECRETSBROKER_TOKEN")
    parser.add_argument("--ca-file", default=None, help="default: $SECRETSBROKER_CA_FILE (enables TLS)")
    parser.add_argument("--db-secret", default=env("TRAINER_DB_SECRET", "kv/teams/ml/training-db"))
    parser.add_argument("--storage-secret", default=env("TRAINER_STORAGE_SECRET", "kv/teams/ml/checkpoint-bucket"))
    parser.add_argument("--db-role", default=env("TRAINER_DB_ROLE"), help="vault-dynamic role for leased database credentials")
    parser.add_argument("--train-seconds", type=float, default=float(env("TRAINER_SECONDS", "0")))
    parser.add_argument("--step-seconds", type=float, default=0.5)
    parser.add_argument("--timeout", type=float, default=10.0, help="seconds per broker call, retries included")
    return parser.parse_args(argv)


def _stop_on_signals(stop: threading.Event) -> None:
    """SIGTERM (a scheduler preempting the job) and SIGINT end the training cleanly, so leases get revoked."""
    if threading.current_thread() is not threading.main_thread():
        return
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())


def main(argv: Optional[List[str]] = None) -> int:
    args = parse_args(argv)
    stop = threading.Event()
    _stop_on_signals(stop)
    try:
        # None falls back to the environment ($SECRETSBROKER_ADDRESS, $SECRETSBROKER_TOKEN_FILE, $SECRETSBROKER_CA_FILE).
        try:
            client = secretsbroker.Client(args.broker, token_file=args.token_file, ca_file=args.ca_file, timeout=args.timeout)
        except ValueError as error:
            print(f"trainer: configuration: {error}", file=sys.stderr)
            return 1
        with client:
            if args.db_role:
                train_with_leased_database(client, args, stop)
                return 0
            db, storage = load_settings(client, args.db_secret, args.storage_secret)
    except secretsbroker.LeaseLost as error:
        print(f"trainer: lost the database lease while training: {error}", file=sys.stderr)
        return 5
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
    # Static credentials: the client is not needed while training.
    train(lambda: db, storage, args.train_seconds, args.step_seconds, stop)
    return 0


if __name__ == "__main__":
    sys.exit(main())
