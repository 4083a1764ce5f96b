"""Deadlines, request size limits, retries on UNAVAILABLE, and the client's lifecycle."""

from __future__ import annotations

import time

import pytest

import secretsbroker
from brokerproc import BrokerProcess, closed_port
from testdata import MOUNT, TOKEN

PATH = f"{MOUNT}/ml/training-db"


def test_a_deadline_that_passes_while_waiting_for_the_broker_raises_deadline_exceeded() -> None:
    # The local broker answers in well under a millisecond, so a deadline cannot reliably pass during a
    # real call (a slow handler is covered in test_client_behaviour.py); waiting for a broker that is
    # not there until the deadline is deterministic.
    started = time.monotonic()
    with closed_port() as port, secretsbroker.Client(f"127.0.0.1:{port}", token=TOKEN, timeout=0.3, wait_for_ready=True) as client:
        with pytest.raises(secretsbroker.DeadlineExceeded):
            client.get_secret(PATH)
    # The deadline (0.3 s) ends the wait, not anything slower: a generous bound for a loaded machine.
    assert time.monotonic() - started < 10


def test_a_request_larger_than_the_broker_accepts_raises_resource_exhausted(client: secretsbroker.Client) -> None:
    # The broker's default MaxRequestBytes is 1 MiB; 3000 paths of ~400 bytes are about 1.2 MB.
    paths = [f"{MOUNT}/{'x' * 390}-{i}" for i in range(3000)]

    with pytest.raises(secretsbroker.ResourceExhausted):
        client.batch_get(paths)


def test_a_broker_that_is_not_listening_raises_unavailable_after_bounded_retries() -> None:
    with closed_port() as port:  # nothing listens here
        with secretsbroker.Client(f"127.0.0.1:{port}", token=TOKEN, timeout=30, max_attempts=3, initial_backoff=0.05, max_backoff=0.2) as client:
            with pytest.raises(secretsbroker.Unavailable) as caught:
                client.get_secret(PATH)

    # Had the retries gone on until the deadline, the error would be DEADLINE_EXCEEDED.
    assert caught.value.code.name == "UNAVAILABLE"


def test_a_target_with_an_http_scheme_is_accepted(broker: BrokerProcess) -> None:
    with secretsbroker.Client(f"http://{broker.target}", token=TOKEN) as client:
        assert client.get_secret(PATH).version == "1"


def test_leaving_the_with_block_closes_the_channel(broker: BrokerProcess) -> None:
    with secretsbroker.Client(broker.target, token=TOKEN) as client:
        client.get_secret(PATH)

    with pytest.raises(secretsbroker.Cancelled, match="closed"):
        client.get_secret(PATH)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"cert_file": "client.pem"},
        {"max_attempts": 0},
        {"max_attempts": 6},
        {"timeout": 0},
    ],
)
def test_contradictory_or_incomplete_options_are_refused(kwargs: dict) -> None:
    with pytest.raises(ValueError):
        secretsbroker.Client("127.0.0.1:1", **kwargs)


def test_http_scheme_with_tls_options_is_refused() -> None:
    with pytest.raises(ValueError):
        secretsbroker.Client("http://127.0.0.1:1", tls=True)
