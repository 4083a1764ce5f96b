"""Client() configured from the environment, and the module-level get_secret() on a lazily created
default client (issue 18: "the pattern ML code already writes", `from ml_secrets import get_secret`)."""

from __future__ import annotations

import multiprocessing
import pathlib
import threading
from typing import List

import pytest

import secretsbroker
from brokerproc import BrokerProcess
from testdata import MOUNT, ROTATED_TOKEN, TOKEN

PATH = f"{MOUNT}/ml/training-db"


def test_the_environment_spelling_is_one_set_of_names() -> None:
    assert secretsbroker.ADDRESS_ENV == "SECRETSBROKER_ADDRESS"
    assert secretsbroker.TOKEN_FILE_ENV == "SECRETSBROKER_TOKEN_FILE"
    assert secretsbroker.CA_FILE_ENV == "SECRETSBROKER_CA_FILE"
    assert secretsbroker.TOKEN_ENV == "SECRETSBROKER_TOKEN"


def test_client_without_arguments_takes_address_and_token_file_from_the_environment(
    broker: BrokerProcess, token_file: pathlib.Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SECRETSBROKER_ADDRESS", broker.target)
    monkeypatch.setenv("SECRETSBROKER_TOKEN_FILE", str(token_file))

    with secretsbroker.Client() as client:
        assert client.target == broker.target
        assert client.get_secret(PATH)["username"] == "FAKE_trainer"


def test_an_http_url_in_the_environment_is_accepted(broker: BrokerProcess, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SECRETSBROKER_ADDRESS", f"http://{broker.target}")
    monkeypatch.setenv("SECRETSBROKER_TOKEN", TOKEN)

    with secretsbroker.Client() as client:
        assert client.get_secret(PATH).version == "1"


def test_an_explicit_target_wins_over_the_environment(broker: BrokerProcess, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SECRETSBROKER_ADDRESS", "127.0.0.1:1")
    with secretsbroker.Client(broker.target, token=TOKEN) as client:
        assert client.get_secret(PATH).version == "1"


def test_without_a_target_or_address_variable_the_client_says_what_to_set() -> None:
    with pytest.raises(ValueError, match="SECRETSBROKER_ADDRESS"):
        secretsbroker.Client()
    with pytest.raises(ValueError, match="SECRETSBROKER_ADDRESS"):
        secretsbroker.get_secret(PATH)


def test_a_ca_file_in_the_environment_with_an_http_target_is_refused(monkeypatch: pytest.MonkeyPatch, tmp_path: pathlib.Path) -> None:
    monkeypatch.setenv("SECRETSBROKER_CA_FILE", str(tmp_path / "ca.crt"))
    with pytest.raises(ValueError, match="SECRETSBROKER_CA_FILE"):
        secretsbroker.Client("http://127.0.0.1:1")


def test_module_level_get_secret_reads_with_the_default_client(
    broker: BrokerProcess, token_file: pathlib.Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SECRETSBROKER_ADDRESS", broker.target)
    monkeypatch.setenv("SECRETSBROKER_TOKEN_FILE", str(token_file))
    from secretsbroker import get_secret

    secret = get_secret(PATH)

    assert secret["password"] == "FAKE-password-not-real"
    assert get_secret(f"{MOUNT}/ml/model-registry", version=1)["token"] == "FAKE-registry-token-v1"
    results = secretsbroker.batch_get([PATH, f"{MOUNT}/ml/missing"])
    assert results[0].ok and isinstance(results[1].error, secretsbroker.NotFound)
    assert sum(1 for _ in secretsbroker.list_secrets(f"{MOUNT}/pages")) == 12
    with pytest.raises(secretsbroker.NotFound):
        get_secret(f"{MOUNT}/ml/missing")
    # One default client for all of these; the token file is still read on every call.
    client = secretsbroker.default_client()
    assert secretsbroker.default_client() is client
    token_file.write_text(ROTATED_TOKEN, encoding="utf-8")
    assert get_secret(PATH).version == "1"


def test_the_default_client_is_created_once_when_many_threads_start_together(
    broker: BrokerProcess, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SECRETSBROKER_ADDRESS", broker.target)
    monkeypatch.setenv("SECRETSBROKER_TOKEN", TOKEN)
    created: List[secretsbroker.Client] = []
    real_init = secretsbroker.Client.__init__

    def counting_init(self: secretsbroker.Client, *args: object, **kwargs: object) -> None:
        created.append(self)
        barrier_passed.wait(5)  # hold the first creator inside the constructor while the others arrive
        real_init(self, *args, **kwargs)  # type: ignore[arg-type]

    barrier_passed = threading.Event()
    monkeypatch.setattr(secretsbroker.Client, "__init__", counting_init)
    start = threading.Barrier(16)
    versions: List[str] = []
    clients: List[secretsbroker.Client] = []

    def worker() -> None:
        start.wait(5)
        clients.append(secretsbroker.default_client())
        versions.append(secretsbroker.get_secret(PATH).version)

    threads = [threading.Thread(target=worker) for _ in range(16)]
    for thread in threads:
        thread.start()
    barrier_passed.set()
    for thread in threads:
        thread.join(10)

    assert len(created) == 1
    assert versions == ["1"] * 16
    assert all(c is created[0] for c in clients)


def test_closing_the_default_client_lets_the_next_call_use_the_changed_environment(
    broker: BrokerProcess, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SECRETSBROKER_ADDRESS", "127.0.0.1:1")
    first = secretsbroker.default_client()
    secretsbroker.close_default_client()
    monkeypatch.setenv("SECRETSBROKER_ADDRESS", broker.target)
    monkeypatch.setenv("SECRETSBROKER_TOKEN", TOKEN)

    assert secretsbroker.get_secret(PATH).version == "1"
    assert secretsbroker.default_client() is not first


def _read_in_child(queue: "multiprocessing.Queue[str]", parent: secretsbroker.Client) -> None:
    try:
        own = secretsbroker.default_client()
        queue.put(f"{own is not parent} {secretsbroker.get_secret(PATH).version}")
    except Exception as error:  # report, do not hang the parent
        queue.put(f"error: {error!r}")


def test_a_forked_child_gets_its_own_default_client(broker: BrokerProcess, monkeypatch: pytest.MonkeyPatch) -> None:
    """DataLoader workers fork: gRPC does not support using a channel created before fork() in the child
    (grpc/grpc doc/fork_support.md), so the child makes its own default client and leaves the parent's alone."""
    monkeypatch.setenv("SECRETSBROKER_ADDRESS", broker.target)
    monkeypatch.setenv("SECRETSBROKER_TOKEN", TOKEN)
    parent = secretsbroker.default_client()
    assert secretsbroker.get_secret(PATH).version == "1"

    context = multiprocessing.get_context("fork")
    queue: "multiprocessing.Queue[str]" = context.Queue()
    child = context.Process(target=_read_in_child, args=(queue, parent))
    child.start()
    try:
        assert queue.get(timeout=30) == "True 1"
    finally:
        child.join(10)
        if child.is_alive():
            child.kill()
    assert secretsbroker.default_client() is parent
    assert secretsbroker.get_secret(PATH).version == "1"
