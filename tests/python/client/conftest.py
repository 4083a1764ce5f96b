"""Fixtures: one real broker for the test session, serving a local mount `team` from a temp YAML file.

Every secret value and token here is fake.
"""

from __future__ import annotations

import pathlib
from typing import Iterator

import pytest

import secretsbroker
from brokerproc import BrokerProcess, start_broker
from testdata import LEASE_POLICY_YAML, MOUNT, NO_RENEW_TOKEN, READ_ONLY_TOKEN, ROTATED_TOKEN, SECRETS_YAML, TOKEN
from vaultproc import LEASE_MOUNTS, VaultEmulator, lease_broker_settings, start_vault_emulator


@pytest.fixture(scope="session")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BrokerProcess]:
    """A real broker process, started once for the session and stopped at its end."""
    root = tmp_path_factory.mktemp("broker")
    secrets_file = root / "secrets.yaml"
    secrets_file.write_text(SECRETS_YAML, encoding="utf-8")
    process = start_broker(
        content_root=root / "content",
        mounts=[{"Prefix": MOUNT, "Type": "local", "File": str(secrets_file), "Watch": "false"}],
        tokens={"py-test": TOKEN, "py-test-rotated": ROTATED_TOKEN},
    )
    try:
        yield process
    finally:
        process.stop()


@pytest.fixture(scope="session")
def vault(tmp_path_factory: pytest.TempPathFactory) -> Iterator[VaultEmulator]:
    """The Vault emulator as a process (started only when a lease or watch test runs)."""
    emulator = start_vault_emulator(tmp_path_factory.mktemp("vault"))
    try:
        yield emulator
    finally:
        emulator.stop()


@pytest.fixture(scope="session")
def lease_broker(tmp_path_factory: pytest.TempPathFactory, vault: VaultEmulator) -> Iterator[BrokerProcess]:
    """A second broker, on the emulator: mounts ``vault`` (KV, cached) and ``db`` (database credentials),
    short lease timings and fast watch polling, and a policy granting issue, renew, revoke and watch."""
    root = tmp_path_factory.mktemp("lease-broker")
    process = start_broker(
        content_root=root / "content",
        mounts=LEASE_MOUNTS,
        tokens={"py-test": TOKEN, "py-test-read-only": READ_ONLY_TOKEN, "py-test-no-renew": NO_RENEW_TOKEN},
        extra_env=lease_broker_settings(vault),
        policy=LEASE_POLICY_YAML,
    )
    try:
        yield process
    finally:
        process.stop()


@pytest.fixture()
def lease_client(lease_broker: BrokerProcess) -> Iterator[secretsbroker.Client]:
    """A client of the lease broker, authenticated with the session's token."""
    with secretsbroker.Client(lease_broker.target, token=TOKEN, timeout=10) as c:
        yield c


@pytest.fixture()
def client(broker: BrokerProcess) -> Iterator[secretsbroker.Client]:
    """A client authenticated with the session's token."""
    with secretsbroker.Client(broker.target, token=TOKEN, timeout=10) as c:
        yield c


@pytest.fixture()
def token_file(tmp_path: pathlib.Path) -> pathlib.Path:
    path = tmp_path / "token"
    path.write_text(TOKEN + "\n", encoding="utf-8")
    return path


@pytest.fixture(autouse=True)
def _no_settings_from_environment(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Tests decide their settings explicitly; an address, token or CA in the runner's environment must
    not leak in, and no test inherits another's module-level default client."""
    for name in ("SECRETSBROKER_ADDRESS", "SECRETSBROKER_TOKEN", "SECRETSBROKER_TOKEN_FILE", "SECRETSBROKER_CA_FILE"):
        monkeypatch.delenv(name, raising=False)
    yield
    close_default = getattr(secretsbroker, "close_default_client", None)
    if close_default is not None:
        close_default()
