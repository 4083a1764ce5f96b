"""TLS against a real broker serving HTTPS with a throwaway self-signed certificate (made by openssl)."""

from __future__ import annotations

import shutil
import subprocess
from typing import Iterator

import pytest

import secretsbroker
from brokerproc import BrokerProcess, start_broker
from testdata import MOUNT, SECRETS_YAML, TOKEN

pytestmark = pytest.mark.skipif(shutil.which("openssl") is None, reason="openssl is needed to make a test certificate")

PATH = f"{MOUNT}/ml/training-db"


@pytest.fixture(scope="module")
def tls_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BrokerProcess]:
    root = tmp_path_factory.mktemp("tls-broker")
    cert, key = root / "broker.crt", root / "broker.key"
    subprocess.run(
        [
            "openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
            "-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1",
            "-keyout", str(key), "-out", str(cert),
        ],
        check=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    secrets_file = root / "secrets.yaml"
    secrets_file.write_text(SECRETS_YAML, encoding="utf-8")
    process = start_broker(
        content_root=root / "content",
        mounts=[{"Prefix": MOUNT, "Type": "local", "File": str(secrets_file), "Watch": "false"}],
        tokens={"py-test": TOKEN},
        extra_env={"Kestrel__Certificates__Default__Path": str(cert), "Kestrel__Certificates__Default__KeyPath": str(key)},
        scheme="https",
    )
    process.extra["ca_file"] = str(cert)
    try:
        yield process
    finally:
        process.stop()


def test_tls_with_the_brokers_ca_reads_a_secret(tls_broker: BrokerProcess) -> None:
    with secretsbroker.Client(tls_broker.target, token=TOKEN, ca_file=tls_broker.extra["ca_file"]) as client:
        assert client.get_secret(PATH)["username"] == "FAKE_trainer"


def test_an_https_target_selects_tls(tls_broker: BrokerProcess) -> None:
    with secretsbroker.Client(f"https://{tls_broker.target}", token=TOKEN, ca_file=tls_broker.extra["ca_file"]) as client:
        assert client.get_secret(PATH).version == "1"


def test_tls_without_trusting_the_brokers_certificate_fails_unavailable(tls_broker: BrokerProcess) -> None:
    with secretsbroker.Client(tls_broker.target, token=TOKEN, tls=True, max_attempts=1, timeout=5) as client:
        with pytest.raises(secretsbroker.Unavailable):
            client.get_secret(PATH)


def test_plaintext_to_a_tls_broker_fails_unavailable(tls_broker: BrokerProcess) -> None:
    with secretsbroker.Client(tls_broker.target, token=TOKEN, max_attempts=1, timeout=5) as client:
        with pytest.raises(secretsbroker.Unavailable):
            client.get_secret(PATH)


def test_a_ca_file_from_the_environment_selects_tls_and_trusts_the_broker(tls_broker: BrokerProcess, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SECRETSBROKER_ADDRESS", tls_broker.target)
    monkeypatch.setenv("SECRETSBROKER_TOKEN", TOKEN)
    monkeypatch.setenv("SECRETSBROKER_CA_FILE", tls_broker.extra["ca_file"])

    with secretsbroker.Client() as client:
        assert client.get_secret(PATH)["username"] == "FAKE_trainer"
    assert secretsbroker.get_secret(PATH).version == "1"
