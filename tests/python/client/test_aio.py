"""secretsbroker.aio.Client (grpc.aio) against the same real brokers as the sync client: reads, errors,
environment, leases (renewal, rotation, revocation, refused attach, expiry while unreachable, reconnect)
and watches. Each test runs its own event loop (asyncio.run), as a FastAPI service has one."""

from __future__ import annotations

import asyncio
import pathlib
from typing import Any, Awaitable, Callable, List

import pytest

import secretsbroker
import secretsbroker.aio
from brokerproc import BrokerProcess, closed_port
from scripted import LEASE_ID, ScriptedServer, ScriptedStreams, secret_event
from secretsbroker import LeaseEventType, LeaseLost
from testdata import BINARY_VALUE, MOUNT, NO_RENEW_TOKEN, READ_ONLY_TOKEN, TOKEN, WRONG_TOKEN
from vaultproc import TcpProxy, VaultEmulator

PATH = f"{MOUNT}/ml/training-db"


def run(test: Callable[[], Awaitable[Any]]) -> Any:
    return asyncio.run(asyncio.wait_for(test(), 120))


async def until(condition: Callable[[], Any], timeout: float, what: str) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not condition():
        if loop.time() > deadline:
            raise AssertionError(f"timed out after {timeout:g}s waiting for: {what}")
        await asyncio.sleep(0.02)


def test_reads_return_the_same_values_as_the_sync_client(broker: BrokerProcess, client: secretsbroker.Client) -> None:
    async def test() -> None:
        async with secretsbroker.aio.Client(broker.target, token=TOKEN) as aio:
            secret = await aio.get_secret(PATH)
            assert secret == client.get_secret(PATH)
            assert dict(secret)["username"] == "FAKE_trainer" and secret.serving is not None
            assert (await aio.get_secret(f"{MOUNT}/ml/model-registry", version=1))["token"] == "FAKE-registry-token-v1"
            assert (await aio.get_secret(f"{MOUNT}/certs/ca")).binary == BINARY_VALUE
            results = await aio.batch_get([PATH, f"{MOUNT}/ml/missing"])
            assert results[0].ok and isinstance(results[1].error, secretsbroker.NotFound)
            assert await aio.batch_get([]) == []
            listed = [entry.path async for entry in aio.list(f"{MOUNT}/pages", page_size=5)]
            assert listed == [entry.path for entry in client.list(f"{MOUNT}/pages")] and len(listed) == 12
            page = await aio.list_page(f"{MOUNT}/pages", 5)
            assert len(page.secrets) == 5 and page.next_page_token

    run(test)


def test_errors_are_the_sync_clients_exceptions(broker: BrokerProcess) -> None:
    async def test() -> None:
        async with secretsbroker.aio.Client(broker.target, token=TOKEN) as aio:
            with pytest.raises(secretsbroker.NotFound) as missing:
                await aio.get_secret(f"{MOUNT}/ml/missing")
            assert missing.value.path == f"{MOUNT}/ml/missing"
            with pytest.raises(secretsbroker.PermissionDenied):
                await aio.get_secret(f"{MOUNT}/restricted/x")
            with pytest.raises(secretsbroker.InvalidArgument):
                await aio.get_secret("a//b")
            with pytest.raises(ValueError):
                await aio.get_secret(PATH, version=1, stage="AWSCURRENT")
            with pytest.raises(TypeError):
                await aio.batch_get(PATH)
        async with secretsbroker.aio.Client(broker.target, token=WRONG_TOKEN) as wrong:
            with pytest.raises(secretsbroker.Unauthenticated):
                await wrong.get_secret(PATH)
        with closed_port() as port:
            async with secretsbroker.aio.Client(f"127.0.0.1:{port}", token=TOKEN, max_attempts=1, timeout=5) as down:
                with pytest.raises(secretsbroker.Unavailable):
                    await down.get_secret(PATH)
        closed = secretsbroker.aio.Client(broker.target, token=TOKEN)
        await closed.close()
        with pytest.raises(secretsbroker.Cancelled):
            await closed.get_secret(PATH)

    run(test)


def test_the_environment_configures_the_aio_client_too(broker: BrokerProcess, token_file: pathlib.Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SECRETSBROKER_ADDRESS", broker.target)
    monkeypatch.setenv("SECRETSBROKER_TOKEN_FILE", str(token_file))

    async def test() -> None:
        async with secretsbroker.aio.Client() as aio:
            assert aio.target == broker.target
            assert (await aio.get_secret(PATH)).version == "1"

    run(test)
    monkeypatch.delenv("SECRETSBROKER_ADDRESS")
    with pytest.raises(ValueError, match="SECRETSBROKER_ADDRESS"):
        secretsbroker.aio.Client()


def test_a_lease_is_renewed_rotated_and_revoked_at_the_end_of_the_block(lease_broker: BrokerProcess, vault: VaultEmulator) -> None:
    rotations: List[str] = []

    async def on_rotate(lease: secretsbroker.aio.Lease) -> None:  # a coroutine callback is awaited
        rotations.append(lease.lease_id)

    async def test() -> str:
        async with secretsbroker.aio.Client(lease_broker.target, token=TOKEN) as aio:
            async with aio.lease("db/short", on_rotate=on_rotate) as lease:
                first_id = lease.lease_id
                assert lease.active and lease.credentials["username"] and lease.path == "db/short"
                assert vault.lease_state(first_id) == (True, False)
                for text in (repr(lease), repr(lease.current)):
                    assert lease.credentials["password"] not in text and first_id not in text

                renewed = await lease.wait_for(LeaseEventType.RENEWED, timeout=30)
                assert renewed.lease_id == first_id
                rotated = await lease.wait_for(LeaseEventType.ROTATED, timeout=40)
                assert rotated.rotated_to is not None and lease.lease_id == rotated.rotated_to.lease_id != first_id
                await until(lambda: rotations == [lease.lease_id], 5, "on_rotate ran")
                current = lease.lease_id
            assert vault.lease_state(current) == (False, True)
            assert lease.lost_reason == "closed"
            with pytest.raises(LeaseLost):
                _ = lease.credentials
            types = [e.type async for e in lease.events(timeout=1)]
            assert types[0] == LeaseEventType.ATTACHED and LeaseEventType.ROTATED in types
            return current

    run(test)


def test_a_lease_without_renew_fails_at_attach_and_its_credentials_are_revoked(lease_broker: BrokerProcess, vault: VaultEmulator) -> None:
    before = set(vault.leases())

    async def test() -> None:
        async with secretsbroker.aio.Client(lease_broker.target, token=NO_RENEW_TOKEN) as aio:
            with pytest.raises(secretsbroker.PermissionDenied):
                await aio.lease("db/steady")
        async with secretsbroker.aio.Client(lease_broker.target, token=READ_ONLY_TOKEN) as read_only:
            with pytest.raises(secretsbroker.PermissionDenied):
                async with read_only.lease("db/steady"):
                    pass

    run(test)
    (issued,) = [lease for lease_id, lease in vault.leases().items() if lease_id not in before]
    assert (issued["live"], issued["revoked"]) == (False, True)


def test_a_lease_reconnects_after_a_drop_and_is_marked_expired_when_the_broker_stays_away(lease_broker: BrokerProcess, vault: VaultEmulator) -> None:
    proxy = TcpProxy(lease_broker.port)

    async def test() -> None:
        async with secretsbroker.aio.Client(proxy.target, token=TOKEN) as aio:
            lease = await aio.lease("db/steady", initial_backoff=0.05, max_backoff=0.5)
            lease_id = lease.lease_id
            proxy.drop_all()
            await lease.wait_for(lambda e: e.type == LeaseEventType.ATTACHED and lease.connections == 2, timeout=30)
            assert lease.active and lease.lease_id == lease_id
            assert vault.lease_state(lease_id) == (True, False)

            proxy.close()  # now for good
            expired = await lease.wait_for(LeaseEventType.EXPIRED, timeout=30)
            assert expired.expires_at is not None
            assert lease.lost_reason == "expired" and not lease.active
            await lease.close()

    try:
        run(test)
    finally:
        proxy.close()


def test_a_watch_delivers_new_versions_and_subscribes_again_after_a_drop(lease_broker: BrokerProcess, vault: VaultEmulator) -> None:
    proxy = TcpProxy(lease_broker.port)

    async def test() -> None:
        async with secretsbroker.aio.Client(proxy.target, token=TOKEN) as aio:
            async with aio.watch(paths=["vault/app/db"], initial_backoff=0.05, max_backoff=0.5) as watch:
                version = await asyncio.to_thread(vault.write_kv, "app/db", {"password": "FAKE-aio-watch"})
                event = await watch.get(timeout=10)
                assert event is not None and (event.path, event.version) == ("vault/app/db", str(version))
                assert (await aio.get_secret("vault/app/db"))["password"] == "FAKE-aio-watch"

                proxy.drop_all()
                await until(lambda: watch.subscriptions == 2, 30, "the watch subscribes again")
                version = await asyncio.to_thread(vault.write_kv, "app/db", {"password": "FAKE-aio-watch-2"})
                async for event in watch:
                    assert event.version == str(version)
                    break
            assert watch.closed and await watch.get(timeout=0) is None
        with pytest.raises(ValueError):
            aio.watch()

    try:
        run(test)
    finally:
        proxy.close()


def test_watch_refusals_raise_from_watch(lease_broker: BrokerProcess) -> None:
    async def test() -> None:
        async with secretsbroker.aio.Client(lease_broker.target, token=READ_ONLY_TOKEN) as read_only:
            with pytest.raises(secretsbroker.PermissionDenied):
                await read_only.watch(paths=["vault/app/db"])
            with pytest.raises(secretsbroker.InvalidArgument):
                await read_only.watch(paths=["vault//app"])

    run(test)


def test_aio_streams_re_read_the_token_file_when_the_broker_ends_them_unauthenticated(tmp_path: pathlib.Path) -> None:
    server = ScriptedServer(ScriptedStreams({"FAKE-old", "FAKE-new"}))
    token_path = tmp_path / "token"
    token_path.write_text("FAKE-old", encoding="utf-8")

    async def test() -> None:
        async with secretsbroker.aio.Client(server.target, token_file=token_path, timeout=5) as aio:
            async with aio.lease("db/steady", initial_backoff=60, max_backoff=60) as lease:
                async with aio.watch(paths=["kv/app/db"], initial_backoff=60, max_backoff=60) as watch:
                    assert {s.token for s in server.servicer.streams} == {"FAKE-old"} and len(server.servicer.streams) == 2
                    token_path.write_text("FAKE-new", encoding="utf-8")
                    server.servicer.expire("FAKE-old")

                    await asyncio.to_thread(server.servicer.wait_streams, 4)
                    await lease.wait_for(lambda e: e.type == LeaseEventType.ATTACHED and lease.connections == 2, timeout=10)
                    assert lease.active and lease.lease_id == LEASE_ID
                    await until(lambda: watch.subscriptions == 2, 10, "the watch subscribes again")
                    (resubscribed,) = [s for s in server.servicer.streams[2:] if s.method == "WatchSecrets"]
                    assert resubscribed.token == "FAKE-new"
                    resubscribed.push(secret_event("kv/app/db", "9"))
                    event = await watch.get(timeout=10)
                    assert event is not None and event.version == "9"

                    server.servicer.expire("FAKE-new")  # and no fresher token comes
                    with pytest.raises(secretsbroker.Unauthenticated):
                        await watch.get(timeout=10)
                    await until(lambda: not lease.active, 10, "the lease is marked lost")
                    assert lease.lost_reason == "unauthenticated"

    try:
        run(test)
    finally:
        server.stop()
