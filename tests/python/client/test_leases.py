"""client.lease(): dynamic database credentials from the Vault emulator, kept alive by a real broker.

Role ``db/steady`` (TTL 3 s, max TTL 1 h) is renewed every ~1 s; role ``db/short`` (TTL 4 s, max TTL
12 s) is renewed until its max TTL caps it, then rotated (~9-10 s after issue). Every wait is bounded.
"""

from __future__ import annotations

import threading
from typing import Iterator, List, Tuple

import pytest

import secretsbroker
from brokerproc import BrokerProcess, closed_port
from secretsbroker import LeaseEventType, LeaseLost
from testdata import NO_RENEW_TOKEN, READ_ONLY_TOKEN, TOKEN
from vaultproc import TcpProxy, VaultEmulator, wait_until


@pytest.fixture()
def renew_faults(vault: VaultEmulator, lease_broker: BrokerProcess) -> Iterator[VaultEmulator]:
    """Resets the emulator's fault switches after a test that sets them, then waits until the broker issues
    credentials again: its Vault client's circuit breaker opens on a run of 500s and pauses every call to
    that Vault (UNAVAILABLE "the broker pauses calls to it briefly") until it closes."""
    try:
        yield vault
    finally:
        vault.request("DELETE", "/__emulator/faults")
        with secretsbroker.Client(lease_broker.target, token=TOKEN, timeout=10, max_attempts=1) as client:
            wait_until(lambda: _can_issue(client), 60, "the broker issues credentials again after the Vault faults")


def _can_issue(client: secretsbroker.Client) -> bool:
    try:
        client.revoke_lease(client.issue_credentials("db/steady").lease_id)
        return True
    except secretsbroker.Unavailable:
        return False


def test_a_lease_is_issued_with_credentials_and_attached(lease_client: secretsbroker.Client, vault: VaultEmulator) -> None:
    with lease_client.lease("db/steady") as lease:
        credentials = lease.credentials
        assert credentials["username"] and credentials["password"]
        assert lease.path == "db/steady"
        assert lease.renewable
        assert lease.ttl.total_seconds() == 3
        assert lease.expires_at is not None and lease.expires_at.tzinfo is not None
        assert lease.active and lease.lost_reason is None

        attached = lease.wait_for(LeaseEventType.ATTACHED, timeout=30)
        assert attached.lease_id == lease.lease_id
        state = vault.leases()[lease.lease_id]
        assert (state["live"], state["revoked"]) == (True, False)
        assert state["credential"] == credentials["username"]

        # Neither the credentials nor the lease id show up in reprs (they end up in logs).
        for text in (repr(lease), repr(lease.current), repr(attached)):
            assert credentials["password"] not in text
            assert lease.lease_id not in text
        # credentials is a copy: changing it does not change the lease.
        credentials["password"] = "changed"
        assert lease.credentials["password"] != "changed"


def test_renewals_are_observed_and_move_the_expiry_forward(lease_client: secretsbroker.Client, vault: VaultEmulator) -> None:
    with lease_client.lease("db/steady") as lease:
        issued_expiry = lease.expires_at
        first_id = lease.lease_id

        renewed = lease.wait_for(LeaseEventType.RENEWED, timeout=30)
        second = lease.wait_for(lambda e: e.type == LeaseEventType.RENEWED and e is not renewed, timeout=30)

        assert renewed.lease_id == first_id == lease.lease_id
        assert issued_expiry is not None and renewed.expires_at is not None and second.expires_at is not None
        assert issued_expiry < renewed.expires_at < second.expires_at
        assert lease.expires_at is not None and lease.expires_at >= second.expires_at
        assert lease.credentials["username"]
        assert vault.lease_state(first_id) == (True, False)
        assert lease.connections == 1


def test_rotation_replaces_the_credentials_fires_the_callback_and_the_old_lease_is_revoked(
    lease_client: secretsbroker.Client, vault: VaultEmulator
) -> None:
    seen: List[Tuple[str, dict, str]] = []
    called = threading.Event()

    def on_rotate(lease: secretsbroker.Lease) -> None:
        seen.append((lease.lease_id, lease.credentials, threading.current_thread().name))
        called.set()

    with lease_client.lease("db/short", on_rotate=on_rotate) as lease:
        old_id, old_credentials = lease.lease_id, lease.credentials

        rotated = lease.wait_for(LeaseEventType.ROTATED, timeout=40)
        assert called.wait(5), "on_rotate was not called"

        new = rotated.rotated_to
        assert rotated.lease_id == old_id and new is not None
        assert lease.lease_id == new.lease_id != old_id
        assert lease.credentials == dict(new.credentials)
        assert lease.credentials["username"] != old_credentials["username"]
        assert lease.expires_at == new.expires_at
        # The callback ran on the keeper thread, once, and already saw the new credentials.
        assert seen == [(new.lease_id, dict(new.credentials), "secretsbroker-lease-keeper")]
        # The renewals before it are in the event history too.
        assert any(e.type == LeaseEventType.RENEWED and e.lease_id == old_id for e in lease.events(timeout=0))

        # After the overlap the broker revokes the old lease: an event about the old lease, which does
        # not make the current one unusable.
        lease.wait_for(lambda e: e.type == LeaseEventType.REVOKED and e.lease_id == old_id, timeout=30)
        assert vault.lease_state(old_id) == (False, True)
        assert lease.active
        assert vault.lease_state(lease.lease_id) == (True, False)
        lease.wait_for(lambda e: e.type == LeaseEventType.RENEWED and e.lease_id == new.lease_id, timeout=30)
        current_id = lease.lease_id

    assert vault.lease_state(current_id) == (False, True)


def test_leaving_the_block_revokes_the_lease_and_the_credentials_become_unusable(
    lease_client: secretsbroker.Client, vault: VaultEmulator
) -> None:
    with lease_client.lease("db/steady") as lease:
        lease_id = lease.lease_id
        lease.wait_for(LeaseEventType.ATTACHED, timeout=30)
        assert vault.lease_state(lease_id) == (True, False)

    # RevokeLease ran before the block was left: Vault has already revoked the lease.
    assert vault.lease_state(lease_id) == (False, True)
    assert lease.revoke_error is None
    assert not lease.active and lease.lost_reason == "closed"
    with pytest.raises(LeaseLost) as raised:
        _ = lease.credentials
    assert raised.value.reason == "closed"
    assert "closed" in str(raised.value)
    with pytest.raises(LeaseLost):
        _ = lease.lease_id
    # The event iterator ends instead of waiting for more.
    list(lease.events(timeout=5))
    # The broker no longer knows the lease.
    with pytest.raises(secretsbroker.NotFound):
        lease_client.revoke_lease(lease_id)
    lease.close()  # a second close is a no-op


def test_a_lease_revoked_elsewhere_becomes_unusable_with_a_clear_error(lease_client: secretsbroker.Client, vault: VaultEmulator) -> None:
    with lease_client.lease("db/steady") as lease:
        lease.wait_for(LeaseEventType.ATTACHED, timeout=30)
        lease_client.revoke_lease(lease.lease_id)  # as an operator or another process holding the id would

        revoked = lease.wait_for(LeaseEventType.REVOKED, timeout=30)

        assert not lease.active and lease.lost_reason == "revoked"
        with pytest.raises(LeaseLost, match="revoked") as raised:
            _ = lease.credentials
        assert raised.value.reason == "revoked" and raised.value.path == "db/steady"
        assert isinstance(raised.value, secretsbroker.FailedPrecondition)
        assert vault.lease_state(revoked.lease_id) == (False, True)
        # The keeper is done: the iterator ends after the REVOKED event.
        assert [e.type for e in lease.events(timeout=5)][-1] == LeaseEventType.REVOKED
    assert lease.revoke_error is None  # nothing left to revoke on the way out


def test_an_error_event_does_not_end_the_lease(lease_client: secretsbroker.Client, renew_faults: VaultEmulator) -> None:
    with lease_client.lease("db/steady") as lease:
        lease.wait_for(LeaseEventType.ATTACHED, timeout=30)
        # The next renewal fails in Vault (a 500 on a write is not retried by the broker's Vault client).
        renew_faults.request("POST", "/__emulator/faults", {"path_prefix": "sys/leases/renew", "error_count": 1, "error_status": 500})

        error = lease.wait_for(LeaseEventType.ERROR, timeout=30)
        assert isinstance(error.error, secretsbroker.Unavailable)
        assert error.error.path == "db/steady"
        assert lease.active
        assert lease.credentials["password"]

        # The broker retries the renewal, and the keeper goes on.
        lease.wait_for(lambda e: e.type == LeaseEventType.RENEWED and e.time is not None and error.time is not None and e.time > error.time, timeout=30)
        assert lease.active and lease.connections == 1


def test_a_lease_that_cannot_be_renewed_expires_and_becomes_unusable(lease_client: secretsbroker.Client, renew_faults: VaultEmulator) -> None:
    with lease_client.lease("db/steady") as lease:
        lease.wait_for(LeaseEventType.ATTACHED, timeout=30)
        renew_faults.request("POST", "/__emulator/faults", {"path_prefix": "sys/leases/renew", "error_count": 1000, "error_status": 500})

        lease.wait_for(LeaseEventType.EXPIRED, timeout=30)

        assert lease.lost_reason == "expired"
        with pytest.raises(LeaseLost, match="expired"):
            _ = lease.credentials


def test_the_keeper_reconnects_and_reattaches_when_the_stream_drops(lease_broker: BrokerProcess, vault: VaultEmulator) -> None:
    proxy = TcpProxy(lease_broker.port)
    try:
        with secretsbroker.Client(proxy.target, token=TOKEN, timeout=10) as client:
            with client.lease("db/steady", initial_backoff=0.05, max_backoff=0.5) as lease:
                lease_id = lease.lease_id
                first_attach = lease.wait_for(LeaseEventType.ATTACHED, timeout=30)

                proxy.drop_all()  # as a network failure or a load balancer restart would

                disconnected = lease.wait_for(LeaseEventType.DISCONNECTED, timeout=30)
                assert isinstance(disconnected.error, secretsbroker.SecretsBrokerError)
                reattached = lease.wait_for(lambda e: e.type == LeaseEventType.ATTACHED and e is not first_attach, timeout=30)
                assert reattached.lease_id == lease_id
                assert lease.connections == 2
                # Same lease, same credentials, still renewed after the re-attach, never revoked.
                lease.wait_for(
                    lambda e: e.type == LeaseEventType.RENEWED and e.time is not None and reattached.time is not None and e.time > reattached.time,
                    timeout=30,
                )
                assert lease.active and lease.lease_id == lease_id
                assert vault.lease_state(lease_id) == (True, False)
            assert vault.lease_state(lease_id) == (False, True)
    finally:
        proxy.close()


def test_closing_the_client_revokes_the_leases_it_keeps(lease_broker: BrokerProcess, vault: VaultEmulator) -> None:
    client = secretsbroker.Client(lease_broker.target, token=TOKEN, timeout=10)
    lease = client.lease("db/steady")
    lease.wait_for(LeaseEventType.ATTACHED, timeout=30)
    lease_id = lease.lease_id

    client.close()

    assert vault.lease_state(lease_id) == (False, True)
    assert lease.lost_reason == "closed"


def test_lease_errors_map_to_exceptions(lease_broker: BrokerProcess, lease_client: secretsbroker.Client) -> None:
    with secretsbroker.Client(lease_broker.target, token=READ_ONLY_TOKEN, timeout=10) as read_only:
        with pytest.raises(secretsbroker.PermissionDenied) as denied:
            read_only.lease("db/steady")
        assert denied.value.path == "db/steady"
    # A KV path is not a role of a vault-dynamic mount.
    with pytest.raises(secretsbroker.FailedPrecondition):
        lease_client.lease("vault/app/db")
    with pytest.raises(secretsbroker.InvalidArgument):
        lease_client.lease("db//steady")
    with pytest.raises(secretsbroker.NotFound):
        lease_client.revoke_lease("database/creds/steady/FAKE-unknown-lease")


def test_events_can_be_followed_from_another_thread_until_the_lease_ends(lease_client: secretsbroker.Client) -> None:
    lease = lease_client.lease("db/steady")
    types: List[LeaseEventType] = []
    follower = threading.Thread(target=lambda: types.extend(e.type for e in lease.events()), daemon=True)
    follower.start()
    try:
        lease.wait_for(LeaseEventType.RENEWED, timeout=30)
        wait_until(lambda: LeaseEventType.RENEWED in types, 5, "the follower sees the renewal")
    finally:
        lease.close()
    follower.join(timeout=10)
    assert not follower.is_alive(), "events() did not end when the lease was closed"
    assert types[:2] == [LeaseEventType.ATTACHED, LeaseEventType.RENEWED]


def test_a_lease_from_an_unreachable_broker_raises_unavailable() -> None:
    with closed_port() as port, secretsbroker.Client(f"127.0.0.1:{port}", token=TOKEN, timeout=5, max_attempts=1) as client:
        with pytest.raises(secretsbroker.Unavailable):
            client.lease("db/steady")


def test_a_lease_the_broker_will_not_keep_alive_fails_at_attach_and_is_revoked(lease_broker: BrokerProcess, vault: VaultEmulator) -> None:
    """Issue 18: a caller without `renew` got a lease that stayed "active" after Vault expired it."""
    before = set(vault.leases())
    with secretsbroker.Client(lease_broker.target, token=NO_RENEW_TOKEN, timeout=10) as client:
        with pytest.raises(secretsbroker.PermissionDenied) as refused:
            client.lease("db/steady")
        assert refused.value.path == "db/steady"

    (issued,) = [lease for lease_id, lease in vault.leases().items() if lease_id not in before]
    # The credentials issued before the refused attach were revoked right away, not left to their TTL.
    assert (issued["live"], issued["revoked"]) == (False, True)


def test_a_lease_whose_expiry_passes_while_the_broker_is_unreachable_is_marked_expired(lease_broker: BrokerProcess) -> None:
    """No EXPIRED event can arrive over a stream that is down: the client marks the lease lost at its expiry
    itself (the broker does not renew a detached lease, so it really is expired)."""
    proxy = TcpProxy(lease_broker.port)
    try:
        with secretsbroker.Client(proxy.target, token=TOKEN, timeout=10) as client:
            with client.lease("db/steady", initial_backoff=0.05, max_backoff=0.5) as lease:
                last_known_expiry = lease.expires_at
                proxy.close()  # the broker is gone for good: no renewal, no event

                expired = lease.wait_for(LeaseEventType.EXPIRED, timeout=30)

                assert not lease.active and lease.lost_reason == "expired"
                assert expired.time is not None and last_known_expiry is not None
                assert expired.time >= expired.expires_at >= last_known_expiry
                with pytest.raises(LeaseLost, match="expiry"):
                    _ = lease.credentials
                assert "expired" in repr(lease)
                # The keeper stopped: the event iterator ends.
                assert [e.type for e in lease.events(timeout=5)][-1] == LeaseEventType.EXPIRED
    finally:
        proxy.close()
