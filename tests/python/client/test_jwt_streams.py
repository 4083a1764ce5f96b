"""Streams across a JWT's expiry against the real broker (issue 17.1): the broker ends a KeepAlive or
WatchSecrets stream UNAUTHENTICATED when the caller's token expires; the client reads the token file
again (kubelet has written a fresh projected token by then), reconnects and re-attaches its lease /
re-subscribes its watch without losing it. A token file that was not refreshed ends them."""

from __future__ import annotations

import asyncio
import pathlib
from typing import Iterator

import pytest

import secretsbroker
import secretsbroker.aio
from brokerproc import BrokerProcess, start_broker
from jwtissuer import SUBJECT, JwtIssuer
from secretsbroker import LeaseEventType
from testdata import TOKEN
from vaultproc import LEASE_MOUNTS, VaultEmulator, lease_broker_settings, wait_until

POLICY = f"""\
policies:
  - name: python-jwt-streams
    appliesTo: {{ subjects: ['{SUBJECT}'] }}
    rules:
      - paths: ['**']
        capabilities: [read, list, issue, renew, revoke, watch]
"""
LIFETIME = 4.0  # seconds a test token lives: long enough to open the streams on a loaded machine



@pytest.fixture(scope="module")
def issuer(tmp_path_factory: pytest.TempPathFactory) -> JwtIssuer:
    return JwtIssuer(tmp_path_factory.mktemp("jwt"))


@pytest.fixture(scope="module")
def jwt_broker(tmp_path_factory: pytest.TempPathFactory, vault: VaultEmulator, issuer: JwtIssuer) -> Iterator[BrokerProcess]:
    root = tmp_path_factory.mktemp("jwt-broker")
    process = start_broker(
        content_root=root / "content",
        mounts=LEASE_MOUNTS,
        tokens={"py-test": TOKEN},
        extra_env={**lease_broker_settings(vault, grace="00:00:30"), **issuer.broker_settings(), "Broker__Auth__Jwt__ValidationCacheTtl": "00:00:00"},
        policy=POLICY,
    )
    try:
        yield process
    finally:
        process.stop()


def test_calls_with_a_jwt_from_the_token_file_work_until_it_expires_and_again_once_refreshed(
    jwt_broker: BrokerProcess, issuer: JwtIssuer, tmp_path: pathlib.Path
) -> None:
    """The JWT setup the stream tests rely on: unary calls read the token file on every call."""
    token_file = tmp_path / "token"
    token_file.write_text(issuer.token(120), encoding="utf-8")
    with secretsbroker.Client(jwt_broker.target, token_file=token_file, timeout=10) as client:
        assert client.get_secret("vault/app/db").path == "vault/app/db"
        token_file.write_text(issuer.token(1, now=0), encoding="utf-8")  # expired in 1970
        with pytest.raises(secretsbroker.Unauthenticated, match="expired"):
            client.get_secret("vault/app/db")
        token_file.write_text(issuer.token(120), encoding="utf-8")
        assert client.get_secret("vault/app/db").path == "vault/app/db"


def test_a_lease_survives_its_callers_token_expiry_by_reattaching_with_the_refreshed_token(
    jwt_broker: BrokerProcess, vault: VaultEmulator, issuer: JwtIssuer, tmp_path: pathlib.Path
) -> None:
    token_file = tmp_path / "token"
    token_file.write_text(issuer.token(LIFETIME), encoding="utf-8")
    with secretsbroker.Client(jwt_broker.target, token_file=token_file, timeout=10) as client:
        with client.lease("db/steady", initial_backoff=0.05, max_backoff=0.5) as lease:
            lease_id = lease.lease_id
            token_file.write_text(issuer.token(120), encoding="utf-8")  # kubelet refreshes before expiry

            disconnected = lease.wait_for(LeaseEventType.DISCONNECTED, timeout=20)
            assert isinstance(disconnected.error, secretsbroker.Unauthenticated)
            lease.wait_for(lambda e: e.type == LeaseEventType.ATTACHED and lease.connections == 2, timeout=20)

            assert lease.active and lease.lease_id == lease_id
            lease.wait_for(lambda e: e.type == LeaseEventType.RENEWED and lease.connections == 2, timeout=20)
            assert vault.lease_state(lease_id) == (True, False)
        assert vault.lease_state(lease_id) == (False, True)


def test_a_lease_whose_token_file_was_not_refreshed_is_lost_unauthenticated(
    jwt_broker: BrokerProcess, issuer: JwtIssuer, tmp_path: pathlib.Path
) -> None:
    token_file = tmp_path / "token"
    token_file.write_text(issuer.token(LIFETIME), encoding="utf-8")
    with secretsbroker.Client(jwt_broker.target, token_file=token_file, timeout=10) as client:
        lease = client.lease("db/steady", initial_backoff=0.05, max_backoff=0.5)
        wait_until(lambda: not lease.active, 20, "the lease is marked lost")
        assert lease.lost_reason == "unauthenticated"
        lease.close()


def test_a_watch_survives_its_callers_token_expiry_by_subscribing_again(
    jwt_broker: BrokerProcess, vault: VaultEmulator, issuer: JwtIssuer, tmp_path: pathlib.Path
) -> None:
    token_file = tmp_path / "token"
    token_file.write_text(issuer.token(LIFETIME), encoding="utf-8")
    with secretsbroker.Client(jwt_broker.target, token_file=token_file, timeout=10) as client:
        with client.watch(paths=["vault/app/db"], initial_backoff=0.05, max_backoff=0.5) as watch:
            token_file.write_text(issuer.token(120), encoding="utf-8")

            wait_until(lambda: watch.subscriptions == 2, 20, "the watch subscribes again after the token expired")
            version = vault.write_kv("app/db", {"password": "FAKE-jwt-watch"})
            event = watch.get(timeout=10)

            assert event is not None and event.version == str(version)


def test_a_watch_whose_token_file_was_not_refreshed_raises_unauthenticated(
    jwt_broker: BrokerProcess, issuer: JwtIssuer, tmp_path: pathlib.Path
) -> None:
    token_file = tmp_path / "token"
    token_file.write_text(issuer.token(LIFETIME), encoding="utf-8")
    with secretsbroker.Client(jwt_broker.target, token_file=token_file, timeout=10) as client:
        with client.watch(paths=["vault/app/db"]) as watch:
            with pytest.raises(secretsbroker.Unauthenticated):
                watch.get(timeout=20)


def test_the_aio_client_reattaches_and_resubscribes_across_token_expiry(
    jwt_broker: BrokerProcess, vault: VaultEmulator, issuer: JwtIssuer, tmp_path: pathlib.Path
) -> None:
    token_file = tmp_path / "token"
    token_file.write_text(issuer.token(LIFETIME), encoding="utf-8")

    async def test() -> None:
        async with secretsbroker.aio.Client(jwt_broker.target, token_file=token_file, timeout=10) as client:
            async with client.lease("db/steady", initial_backoff=0.05, max_backoff=0.5) as lease:
                async with client.watch(paths=["vault/app/db"], initial_backoff=0.05, max_backoff=0.5) as watch:
                    lease_id = lease.lease_id
                    token_file.write_text(issuer.token(120), encoding="utf-8")

                    await lease.wait_for(lambda e: e.type == LeaseEventType.ATTACHED and lease.connections == 2, timeout=20)
                    assert lease.active and lease.lease_id == lease_id
                    deadline = asyncio.get_running_loop().time() + 20
                    while watch.subscriptions < 2:
                        assert asyncio.get_running_loop().time() < deadline, "the watch did not subscribe again"
                        await asyncio.sleep(0.05)
                    version = await asyncio.to_thread(vault.write_kv, "app/db", {"password": "FAKE-jwt-aio"})
                    event = await watch.get(timeout=10)
                    assert event is not None and event.version == str(version)

    asyncio.run(asyncio.wait_for(test(), 120))
