"""client.watch(): new KV versions written in the Vault emulator arrive as SecretEvents from a real broker.

The lease broker polls watched secrets every 200 ms and caches the ``vault`` mount for 10 minutes, so
a read that returns the new version right after an event proves the broker dropped its cached value.
"""

from __future__ import annotations

import pathlib
import threading
from typing import List

import pytest

import secretsbroker
from brokerproc import BrokerProcess, closed_port
from testdata import READ_ONLY_TOKEN, TOKEN, WRONG_TOKEN
from vaultproc import TcpProxy, VaultEmulator, wait_until


def test_a_new_kv_version_yields_one_event_and_get_secret_returns_it_right_after(
    lease_client: secretsbroker.Client, vault: VaultEmulator
) -> None:
    before = lease_client.get_secret("vault/app/db")  # now cached by the broker for 10 minutes
    assert lease_client.get_secret("vault/app/db").serving.source != "backend"

    with lease_client.watch(paths=["vault/app/db"]) as watch:
        version = vault.write_kv("app/db", {"password": "FAKE-watch-python"})
        assert version > int(before.version)

        event = watch.get(timeout=10)

        # The first event is this change: a version an earlier test wrote while nobody watched was current when
        # the watch began, so it is no change for this watcher.
        assert isinstance(event, secretsbroker.SecretEvent), "no event within 10 s"
        assert (event.path, event.version) == ("vault/app/db", str(version))
        assert event.time is not None and event.time.tzinfo is not None
        secret = lease_client.get_secret("vault/app/db")
        assert secret.version == str(version)
        assert secret["password"] == "FAKE-watch-python"
        # Exactly one event for one change: nothing more arrives over several poll intervals.
        assert watch.get(timeout=1.0) is None
    assert watch.closed


def test_a_prefix_watch_reports_changes_beneath_it(lease_client: secretsbroker.Client, vault: VaultEmulator) -> None:
    with lease_client.watch(prefixes=["vault/app"]) as watch:
        version = vault.write_kv("app/db", {"password": "FAKE-watch-prefix"})

        event = watch.get(timeout=10)

        assert event is not None, "no event within 10 s"
        assert (event.path, event.version) == ("vault/app/db", str(version))


def test_closing_a_watch_ends_an_iteration_blocked_in_another_thread(lease_client: secretsbroker.Client) -> None:
    watch = lease_client.watch(paths=["vault/app/db"])
    received: List[secretsbroker.SecretEvent] = []
    reader = threading.Thread(target=lambda: received.extend(watch), daemon=True)
    reader.start()

    watch.close()

    reader.join(timeout=10)
    assert not reader.is_alive(), "iteration did not end when the watch was closed"
    assert received == []
    assert watch.get(timeout=0) is None
    watch.close()  # a second close is a no-op


def test_watch_errors_map_to_exceptions(lease_broker: BrokerProcess, lease_client: secretsbroker.Client) -> None:
    with secretsbroker.Client(lease_broker.target, token=READ_ONLY_TOKEN, timeout=10) as read_only:
        with pytest.raises(secretsbroker.PermissionDenied):
            read_only.watch(paths=["vault/app/db"])
    with pytest.raises(secretsbroker.InvalidArgument):
        lease_client.watch(paths=["vault//app"])
    with pytest.raises(ValueError):
        lease_client.watch()
    with pytest.raises(TypeError):
        lease_client.watch(paths="vault/app/db")  # type: ignore[arg-type]


def test_closing_the_client_closes_its_watches(lease_broker: BrokerProcess) -> None:
    client = secretsbroker.Client(lease_broker.target, token=TOKEN, timeout=10)
    watch = client.watch(paths=["vault/app/db"])

    client.close()

    assert watch.closed
    assert list(watch) == []


def test_watching_an_unreachable_broker_raises_unavailable() -> None:
    with closed_port() as port, secretsbroker.Client(f"127.0.0.1:{port}", token=TOKEN, timeout=5, max_attempts=1) as client:
        with pytest.raises(secretsbroker.Unavailable):
            client.watch(paths=["vault/app/db"])


def test_a_watch_whose_stream_breaks_subscribes_again_and_goes_on_delivering(lease_broker: BrokerProcess, vault: VaultEmulator) -> None:
    proxy = TcpProxy(lease_broker.port)
    try:
        with secretsbroker.Client(proxy.target, token=TOKEN, timeout=10) as client:
            with client.watch(paths=["vault/app/db"], initial_backoff=0.05, max_backoff=0.5) as watch:
                assert watch.subscriptions == 1
                proxy.drop_all()  # the broker (or the network to it) goes away for a moment

                wait_until(lambda: watch.subscriptions == 2, 30, "the watch subscribes again")
                version = vault.write_kv("app/db", {"password": "FAKE-watch-after-reconnect"})
                event = watch.get(timeout=10)

                assert event is not None, "no event after the re-subscription"
                assert (event.path, event.version) == ("vault/app/db", str(version))
                assert proxy.accepted == 2
    finally:
        proxy.close()


def test_a_watch_refused_after_a_reconnect_raises_the_refusal_then_ends(lease_broker: BrokerProcess, tmp_path: pathlib.Path) -> None:
    """The re-subscription uses the token file as it is then: a token the broker refuses ends the watch
    with Unauthenticated (after re-reading the file AUTH_RETRIES more times), instead of retrying forever."""
    token_file = tmp_path / "token"
    token_file.write_text(TOKEN, encoding="utf-8")
    proxy = TcpProxy(lease_broker.port)
    try:
        with secretsbroker.Client(proxy.target, token_file=token_file, timeout=10) as client:
            with client.watch(paths=["vault/app/db"], initial_backoff=0.05, max_backoff=0.5) as watch:
                token_file.write_text(WRONG_TOKEN, encoding="utf-8")
                proxy.drop_all()

                with pytest.raises(secretsbroker.Unauthenticated):
                    watch.get(timeout=30)
                assert watch.get(timeout=0) is None
                assert list(watch) == []
                assert watch.subscriptions == 1
    finally:
        proxy.close()
