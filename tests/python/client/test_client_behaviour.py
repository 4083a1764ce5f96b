"""Client behaviour the real broker cannot be made to produce on demand, checked against an in-process gRPC server.

Every status on a chosen attempt (UNAVAILABLE twice then OK, to count the retries; each code once, to map
it to its exception class) and the metadata of each attempt need a scripted server built on the generated
servicer base class. Policy refusals (PERMISSION_DENIED) and everything else are tested against the
real broker.
"""

from __future__ import annotations

import threading
from concurrent import futures
from typing import Callable, Iterator, List, Tuple

import grpc
import pytest

import secretsbroker
from secretsbroker.v1 import broker_pb2 as pb
from secretsbroker.v1 import broker_pb2_grpc as pb_grpc

Handler = Callable[[pb.GetSecretRequest, grpc.ServicerContext], pb.GetSecretResponse]


class ScriptedBroker(pb_grpc.SecretsBrokerServicer):
    """Answers GetSecret with the next scripted handler; records the metadata of every call."""

    def __init__(self) -> None:
        self.handlers: List[Handler] = []
        self.calls: List[Tuple[Tuple[str, str], ...]] = []
        self._lock = threading.Lock()

    def GetSecret(self, request: pb.GetSecretRequest, context: grpc.ServicerContext) -> pb.GetSecretResponse:
        with self._lock:
            self.calls.append(tuple((m.key, m.value) for m in context.invocation_metadata()))
            handler = self.handlers.pop(0) if self.handlers else _ok
        return handler(request, context)


def _ok(request: pb.GetSecretRequest, context: grpc.ServicerContext) -> pb.GetSecretResponse:
    return pb.GetSecretResponse(secret=pb.Secret(path=request.path, version="7", data={"k": "FAKE-v"}))


def _fail(code: grpc.StatusCode, message: str) -> Handler:
    def handler(request: pb.GetSecretRequest, context: grpc.ServicerContext) -> pb.GetSecretResponse:
        context.abort(code, message)
        raise AssertionError("unreachable")

    return handler


@pytest.fixture()
def scripted() -> Iterator[Tuple[ScriptedBroker, str]]:
    servicer = ScriptedBroker()
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    pb_grpc.add_SecretsBrokerServicer_to_server(servicer, server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    try:
        yield servicer, f"127.0.0.1:{port}"
    finally:
        server.stop(grace=None)


@pytest.mark.parametrize(
    "code, exception",
    [
        (grpc.StatusCode.PERMISSION_DENIED, secretsbroker.PermissionDenied),
        (grpc.StatusCode.RESOURCE_EXHAUSTED, secretsbroker.ResourceExhausted),
        (grpc.StatusCode.NOT_FOUND, secretsbroker.NotFound),
        (grpc.StatusCode.INVALID_ARGUMENT, secretsbroker.InvalidArgument),
        (grpc.StatusCode.FAILED_PRECONDITION, secretsbroker.FailedPrecondition),
        (grpc.StatusCode.UNAUTHENTICATED, secretsbroker.Unauthenticated),
        (grpc.StatusCode.INTERNAL, secretsbroker.Internal),
    ],
)
def test_each_status_becomes_its_exception_class(scripted: Tuple[ScriptedBroker, str], code: grpc.StatusCode, exception: type) -> None:
    servicer, target = scripted
    servicer.handlers.append(_fail(code, "scripted failure"))

    with secretsbroker.Client(target, token="FAKE") as client:
        with pytest.raises(exception) as caught:
            client.get_secret("x/y")

    assert caught.value.code == code
    assert caught.value.message == "scripted failure"
    assert len(servicer.calls) == 1, "only UNAVAILABLE is retried"


def test_a_status_without_its_own_class_becomes_the_base_error(scripted: Tuple[ScriptedBroker, str]) -> None:
    servicer, target = scripted
    servicer.handlers.append(_fail(grpc.StatusCode.DATA_LOSS, "scripted"))

    with secretsbroker.Client(target, token="FAKE") as client:
        with pytest.raises(secretsbroker.SecretsBrokerError) as caught:
            client.get_secret("x/y")

    assert type(caught.value) is secretsbroker.SecretsBrokerError
    assert caught.value.code == grpc.StatusCode.DATA_LOSS


def test_unavailable_is_retried_with_backoff_and_then_succeeds(scripted: Tuple[ScriptedBroker, str]) -> None:
    servicer, target = scripted
    servicer.handlers.extend([_fail(grpc.StatusCode.UNAVAILABLE, "backend down")] * 2)

    with secretsbroker.Client(target, token="FAKE", max_attempts=4, initial_backoff=0.01, max_backoff=0.05) as client:
        secret = client.get_secret("x/y")

    assert secret.version == "7"
    assert len(servicer.calls) == 3


def test_unavailable_on_every_attempt_raises_unavailable_after_max_attempts(scripted: Tuple[ScriptedBroker, str]) -> None:
    servicer, target = scripted
    servicer.handlers.extend([_fail(grpc.StatusCode.UNAVAILABLE, "backend down")] * 10)

    with secretsbroker.Client(target, token="FAKE", max_attempts=3, initial_backoff=0.01, max_backoff=0.05) as client:
        with pytest.raises(secretsbroker.Unavailable, match="backend down"):
            client.get_secret("x/y")

    assert len(servicer.calls) == 3


def test_max_attempts_of_one_disables_retries(scripted: Tuple[ScriptedBroker, str]) -> None:
    servicer, target = scripted
    servicer.handlers.extend([_fail(grpc.StatusCode.UNAVAILABLE, "backend down")] * 2)

    with secretsbroker.Client(target, token="FAKE", max_attempts=1) as client:
        with pytest.raises(secretsbroker.Unavailable):
            client.get_secret("x/y")

    assert len(servicer.calls) == 1


def test_a_slow_answer_raises_deadline_exceeded(scripted: Tuple[ScriptedBroker, str]) -> None:
    servicer, target = scripted

    released = threading.Event()

    def slow(request: pb.GetSecretRequest, context: grpc.ServicerContext) -> pb.GetSecretResponse:
        # Answers only after the client gave up, however slow the machine: no race between a sleep and the deadline.
        released.wait(timeout=60)
        return _ok(request, context)

    servicer.handlers.append(slow)
    try:
        with secretsbroker.Client(target, token="FAKE", timeout=0.2) as client:
            with pytest.raises(secretsbroker.DeadlineExceeded):
                client.get_secret("x/y")
    finally:
        released.set()


def test_every_call_sends_the_bearer_token_and_a_user_agent(scripted: Tuple[ScriptedBroker, str]) -> None:
    servicer, target = scripted

    with secretsbroker.Client(target, token="  FAKE-token \n") as client:
        client.get_secret("x/y")

    metadata = dict(servicer.calls[0])
    assert metadata["authorization"] == "Bearer FAKE-token"
    assert metadata["user-agent"].startswith(f"secretsbroker-python/{secretsbroker.__version__}")


def test_without_any_token_no_authorization_metadata_is_sent(scripted: Tuple[ScriptedBroker, str]) -> None:
    servicer, target = scripted

    with secretsbroker.Client(target) as client:
        client.get_secret("x/y")

    assert "authorization" not in dict(servicer.calls[0])
