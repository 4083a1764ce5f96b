"""Envelope files and small values against a real broker with a local keyring, and across languages:
files made by Python decrypt with brokerctl (the C# client) and the other way round.

Every key and value here is fake.
"""

from __future__ import annotations

import asyncio
import base64
import io
import json
import os
import pathlib
import subprocess
from typing import Iterator, Tuple

import pytest

pytest.importorskip("cryptography")

import secretsbroker  # noqa: E402
import secretsbroker.aio  # noqa: E402
from brokerproc import REPO_ROOT, BrokerProcess, built_dll, start_broker  # noqa: E402
from secretsbroker import crypto  # noqa: E402
from testdata import READ_ONLY_TOKEN, TOKEN  # noqa: E402

KEY_PATH = "keys/app"
CONTEXT = {"model": "resnet-fake"}
# base64 of 32 obviously fake bytes ("FAKE-pytest-key-v1-not-secret-32")
KEYRING_YAML = "keys:\n  app:\n    versions:\n      \"1\": RkFLRS1weXRlc3Qta2V5LXYxLW5vdC1zZWNyZXQtMzI=\n"
POLICY_YAML = """\
policies:
  - name: python-crypto
    appliesTo: { subjects: [py-test] }
    rules:
      - paths: ['keys/**']
        capabilities: [encrypt, decrypt, datakey]
  - name: python-crypto-encrypt-only
    appliesTo: { subjects: [py-test-read-only] }
    rules:
      - paths: ['keys/**']
        capabilities: [encrypt]
"""
BROKERCTL_PROJECT = REPO_ROOT / "clients" / "cli"
BROKERCTL_DLL = BROKERCTL_PROJECT / "bin" / "Release" / "net10.0" / "brokerctl.dll"


@pytest.fixture(scope="module")
def crypto_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BrokerProcess]:
    root = tmp_path_factory.mktemp("crypto-broker")
    keys = root / "keys.yaml"
    keys.write_text(KEYRING_YAML, encoding="utf-8")
    process = start_broker(
        content_root=root / "content",
        mounts=[{"Prefix": "keys", "Type": "local-keyring", "KeyFile": str(keys)}],
        tokens={"py-test": TOKEN, "py-test-read-only": READ_ONLY_TOKEN},
        policy=POLICY_YAML,
    )
    try:
        yield process
    finally:
        process.stop()


@pytest.fixture()
def broker_client(crypto_broker: BrokerProcess) -> Iterator[secretsbroker.Client]:
    with secretsbroker.Client(crypto_broker.target, token=TOKEN, timeout=30) as c:
        yield c


def brokerctl(broker: BrokerProcess, *args: str, stdin: bytes = b"") -> Tuple[int, bytes, str]:
    dll = built_dll(BROKERCTL_PROJECT, BROKERCTL_DLL, "SECRETSBROKER_BROKERCTL_DLL", "brokerctl")
    env = {k: v for k, v in os.environ.items() if not k.startswith("SECRETSBROKER_")}
    env.update({"SECRETSBROKER_ADDRESS": broker.target, "SECRETSBROKER_TOKEN": TOKEN, "DOTNET_NOLOGO": "1"})
    result = subprocess.run(["dotnet", str(dll), *args], input=stdin, capture_output=True, env=env, timeout=120)
    return result.returncode, result.stdout, result.stderr.decode("utf-8", "replace")


def test_a_file_round_trips_through_the_brokers_data_keys(broker_client: secretsbroker.Client, tmp_path: pathlib.Path) -> None:
    plain = os.urandom(3 * 4096 + 11)
    (tmp_path / "model.bin").write_bytes(plain)
    header = crypto.encrypt_file(tmp_path / "model.bin", tmp_path / "model.sbef", KEY_PATH, context=CONTEXT, client=broker_client, chunk_size=4096)
    crypto.decrypt_file(tmp_path / "model.sbef", tmp_path / "out.bin", context=CONTEXT, key_path=KEY_PATH, client=broker_client)
    assert (tmp_path / "out.bin").read_bytes() == plain
    assert (header.key_path, header.key_version) == (KEY_PATH, "1")


def test_the_broker_refuses_a_header_edited_to_the_callers_context(broker_client: secretsbroker.Client) -> None:
    out = io.BytesIO()
    crypto.encrypt_stream(io.BytesIO(b"abc"), out, KEY_PATH, context={"model": "resnet-fake"}, client=broker_client)
    tampered = out.getvalue().replace(b"resnet-fake", b"resnet-evil", 1)
    with pytest.raises(secretsbroker.InvalidArgument):
        crypto.decrypt_stream(io.BytesIO(tampered), io.BytesIO(), context={"model": "resnet-evil"}, client=broker_client)


def test_without_datakey_no_data_key_is_handed_out(crypto_broker: BrokerProcess) -> None:
    with secretsbroker.Client(crypto_broker.target, token=READ_ONLY_TOKEN, timeout=30) as trainer:
        with pytest.raises(secretsbroker.PermissionDenied):
            crypto.encrypt_stream(io.BytesIO(b"abc"), io.BytesIO(), KEY_PATH, context=CONTEXT, client=trainer)
        trainer.encrypt(KEY_PATH, b"FAKE-value")  # encrypt alone is granted


def test_small_values_on_the_sync_client(broker_client: secretsbroker.Client) -> None:
    ciphertext = broker_client.encrypt(KEY_PATH, b"FAKE-small-value", context=CONTEXT)
    assert b"FAKE-small-value" not in ciphertext
    assert broker_client.decrypt(ciphertext, context=CONTEXT) == b"FAKE-small-value"
    assert broker_client.decrypt(broker_client.rewrap(ciphertext, context=CONTEXT), context=CONTEXT) == b"FAKE-small-value"
    with pytest.raises(secretsbroker.InvalidArgument):
        broker_client.decrypt(ciphertext, context={"model": "other"})
    with pytest.raises(TypeError):
        broker_client.encrypt(KEY_PATH, "a str is not bytes")  # type: ignore[arg-type]
    key = broker_client.generate_data_key(KEY_PATH, context=CONTEXT)
    assert len(key.plaintext_key) == 32 and "plaintext" not in repr(key)
    assert broker_client.decrypt_data_key(key.wrapped_key, context=CONTEXT).plaintext_key == key.plaintext_key


def test_small_values_on_the_asyncio_client(crypto_broker: BrokerProcess) -> None:
    async def run() -> bytes:
        async with secretsbroker.aio.Client(crypto_broker.target, token=TOKEN, timeout=30) as client:
            ciphertext = await client.encrypt(KEY_PATH, b"FAKE-async-value", context=CONTEXT)
            key = await client.generate_data_key(KEY_PATH)
            assert (await client.decrypt_data_key(key.wrapped_key)).plaintext_key == key.plaintext_key
            return await client.decrypt(await client.rewrap(ciphertext, context=CONTEXT), context=CONTEXT)

    assert asyncio.run(run()) == b"FAKE-async-value"


def test_a_python_file_decrypts_with_brokerctl_and_back(crypto_broker: BrokerProcess, broker_client: secretsbroker.Client, tmp_path: pathlib.Path) -> None:
    plain = os.urandom(5 * 4096 + 3)
    (tmp_path / "model.bin").write_bytes(plain)
    crypto.encrypt_file(tmp_path / "model.bin", tmp_path / "py.sbef", KEY_PATH, context=CONTEXT, client=broker_client, chunk_size=4096)
    code, _, err = brokerctl(crypto_broker, "decrypt-file", str(tmp_path / "py.sbef"), str(tmp_path / "by-brokerctl.bin"), "-c", "model=resnet-fake")
    assert code == 0, err
    assert (tmp_path / "by-brokerctl.bin").read_bytes() == plain

    code, out, err = brokerctl(crypto_broker, "encrypt-file", KEY_PATH, str(tmp_path / "model.bin"), str(tmp_path / "ctl.sbef"),
                               "-c", "model=resnet-fake", "--chunk-size", "4096")
    assert code == 0, err
    assert json.loads(out)["keyPath"] == KEY_PATH
    crypto.decrypt_file(tmp_path / "ctl.sbef", tmp_path / "by-python.bin", context=CONTEXT, client=broker_client)
    assert (tmp_path / "by-python.bin").read_bytes() == plain


def test_brokerctl_streams_through_stdin_and_stdout(crypto_broker: BrokerProcess, broker_client: secretsbroker.Client) -> None:
    plain = os.urandom(10_000)
    code, sealed, err = brokerctl(crypto_broker, "encrypt-file", KEY_PATH, "-", "-", "-c", "model=resnet-fake", stdin=plain)
    assert code == 0, err
    out = io.BytesIO()
    crypto.decrypt_stream(io.BytesIO(sealed), out, context=CONTEXT, client=broker_client)
    assert out.getvalue() == plain

    code, ciphertext, err = brokerctl(crypto_broker, "encrypt", KEY_PATH, stdin=b"FAKE-stdin-value")
    assert code == 0, err
    assert broker_client.decrypt(base64.b64decode(ciphertext)) == b"FAKE-stdin-value"
    code, value, err = brokerctl(crypto_broker, "decrypt", stdin=ciphertext)
    assert (code, value) == (0, b"FAKE-stdin-value"), err


def test_brokerctl_reports_a_tampered_python_file(crypto_broker: BrokerProcess, broker_client: secretsbroker.Client, tmp_path: pathlib.Path) -> None:
    (tmp_path / "model.bin").write_bytes(os.urandom(3 * 4096))
    crypto.encrypt_file(tmp_path / "model.bin", tmp_path / "py.sbef", KEY_PATH, context=CONTEXT, client=broker_client, chunk_size=4096)
    data = bytearray((tmp_path / "py.sbef").read_bytes())
    data[-20] ^= 0x80
    (tmp_path / "py.sbef").write_bytes(bytes(data))
    code, _, err = brokerctl(crypto_broker, "decrypt-file", str(tmp_path / "py.sbef"), str(tmp_path / "out.bin"), "-c", "model=resnet-fake")
    assert code == 10
    assert json.loads(err)["error"]["code"] == "ENVELOPE_CHUNK_AUTHENTICATION"
    assert not (tmp_path / "out.bin").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.bin", "py.sbef"]
