"""put_secret(): writes through a real broker to a writable local mount, on the sync client, the asyncio
client and the module-level function; errors map to the client's exceptions."""

from __future__ import annotations

import asyncio
import pathlib
from typing import Iterator

import pytest

import secretsbroker
import secretsbroker.aio
from brokerproc import BrokerProcess, start_broker
from testdata import READ_ONLY_TOKEN, TOKEN

WRITE_POLICY_YAML = """\
policies:
  - name: python-writer
    appliesTo: { subjects: [py-test] }
    rules:
      - paths: ['**']
        capabilities: [read, list, write]
  - name: python-read-only
    appliesTo: { subjects: [py-test-read-only] }
    rules:
      - paths: ['**']
        capabilities: [read, list]
"""


@pytest.fixture(scope="module")
def write_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BrokerProcess]:
    root = tmp_path_factory.mktemp("write-broker")
    secrets_file = root / "dev.yaml"
    secrets_file.write_text("secrets:\n  app/api:\n    data: { key: FAKE-py-v1 }\n", encoding="utf-8")
    frozen_file = root / "frozen.yaml"
    frozen_file.write_text("secrets:\n  app/api:\n    data: { key: FAKE-frozen }\n", encoding="utf-8")
    process = start_broker(
        content_root=root / "content",
        mounts=[
            {"Prefix": "dev", "Type": "local", "File": str(secrets_file), "Writable": "true"},
            {"Prefix": "frozen", "Type": "local", "File": str(frozen_file)},
        ],
        tokens={"py-test": TOKEN, "py-test-read-only": READ_ONLY_TOKEN},
        policy=WRITE_POLICY_YAML,
    )
    try:
        yield process
    finally:
        process.stop()


def test_put_secret_writes_a_version_read_back_at_once(write_broker: BrokerProcess) -> None:
    with secretsbroker.Client(write_broker.target, token=TOKEN, timeout=10) as client:
        before = client.get_secret("dev/app/api")
        written = client.put_secret("dev/app/api", {"key": "FAKE-py-v2"}, expected_version=before.version)

        assert isinstance(written, secretsbroker.WrittenSecret)
        assert (written.path, written.version) == ("dev/app/api", str(int(before.version) + 1))
        assert written.created_time is not None and written.created_time.tzinfo is not None
        secret = client.get_secret("dev/app/api")
        assert secret.version == written.version and secret["key"] == "FAKE-py-v2"

        with pytest.raises(secretsbroker.FailedPrecondition) as stale:
            client.put_secret("dev/app/api", {"key": "FAKE-py-stale"}, expected_version=before.version)
        assert f"the current version is {written.version}" in str(stale.value)

        created = client.put_secret("dev/new/blob", binary=b"\x00FAKE\xff", expected_version="")
        assert created.version == "1"
        assert client.get_secret("dev/new/blob").binary == b"\x00FAKE\xff"


def test_put_secret_errors_map_to_exceptions(write_broker: BrokerProcess) -> None:
    with secretsbroker.Client(write_broker.target, token=TOKEN, timeout=10) as client:
        with pytest.raises(ValueError):
            client.put_secret("dev/app/api")
        with pytest.raises(ValueError):
            client.put_secret("dev/app/api", {"k": "FAKE-x"}, binary=b"x")
        with pytest.raises(TypeError):
            client.put_secret("dev/app/api", {"k": 1})  # type: ignore[dict-item]
        with pytest.raises(secretsbroker.InvalidArgument):
            client.put_secret("dev//app", {"k": "FAKE-x"})
        with pytest.raises(secretsbroker.FailedPrecondition):
            client.put_secret("frozen/app/api", {"k": "FAKE-x"})
    with secretsbroker.Client(write_broker.target, token=READ_ONLY_TOKEN, timeout=10) as read_only:
        with pytest.raises(secretsbroker.PermissionDenied):
            read_only.put_secret("dev/app/api", {"k": "FAKE-denied"})


def test_put_secret_on_the_asyncio_client(write_broker: BrokerProcess) -> None:
    async def run() -> secretsbroker.WrittenSecret:
        async with secretsbroker.aio.Client(write_broker.target, token=TOKEN, timeout=10) as client:
            written = await client.put_secret("dev/aio/key", {"key": "FAKE-aio"}, expected_version="")
            assert (await client.get_secret("dev/aio/key"))["key"] == "FAKE-aio"
            with pytest.raises(secretsbroker.FailedPrecondition):
                await client.put_secret("dev/aio/key", {"key": "FAKE-aio-2"}, expected_version="")
            return written

    assert asyncio.run(run()).version == "1"


def test_module_level_put_secret_uses_the_default_client(write_broker: BrokerProcess, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(secretsbroker.ADDRESS_ENV, write_broker.target)
    monkeypatch.setenv(secretsbroker.TOKEN_ENV, TOKEN)
    secretsbroker.close_default_client()
    try:
        written = secretsbroker.put_secret("dev/module/key", {"key": "FAKE-module"})
        assert secretsbroker.get_secret("dev/module/key").version == written.version
    finally:
        secretsbroker.close_default_client()
