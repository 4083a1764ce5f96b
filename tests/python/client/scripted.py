"""An in-process gRPC server on the generated servicer base class, for client behaviour the real broker
cannot be made to produce on demand: a KeepAlive or WatchSecrets stream ended as UNAUTHENTICATED when the
caller's token expires (issue 17.1; the broker side is tests/Broker.Tests), a renewal refused in an ERROR
event after the attach, an UNAVAILABLE end of stream. Statuses and messages are the broker's own
(services/Broker/Auth and Grpc/ErrorStatus.cs). Every value here is fake.
"""

from __future__ import annotations

import datetime as dt
import queue
import threading
from concurrent import futures
from typing import Iterator, List, Optional, Set, Tuple

import grpc
from google.protobuf import duration_pb2, timestamp_pb2

from secretsbroker.v1 import broker_pb2 as pb
from secretsbroker.v1 import broker_pb2_grpc as pb_grpc

LEASE_ID = "database/creds/steady/FAKE-scripted-lease"


def _stamp(at: dt.datetime) -> timestamp_pb2.Timestamp:
    stamp = timestamp_pb2.Timestamp()
    stamp.FromDatetime(at.astimezone(dt.timezone.utc).replace(tzinfo=None))
    return stamp


class _Stream:
    """One open KeepAlive or WatchSecrets stream: the test ends it with a status or pushes messages."""

    def __init__(self, token: str, method: str) -> None:
        self.token = token
        self.method = method
        self.outbox: "queue.Queue[object]" = queue.Queue()

    def end(self, code: grpc.StatusCode, message: str) -> None:
        self.outbox.put((code, message))

    def push(self, message: object) -> None:
        self.outbox.put(message)


class ScriptedStreams(pb_grpc.SecretsBrokerServicer):
    """Accepts the tokens in ``valid``; records every stream it opened (with its token) and every refusal."""

    def __init__(self, valid: Set[str], ttl_seconds: int = 3600) -> None:
        self.valid = set(valid)
        self.ttl_seconds = ttl_seconds
        self.streams: List[_Stream] = []
        self.refused: List[Tuple[str, str]] = []  # (method, token)
        self.revoked: List[str] = []
        self._lock = threading.Lock()
        self._opened = threading.Condition(self._lock)

    # -- helpers for tests ------------------------------------------------------------------

    def wait_streams(self, count: int, timeout: float = 10) -> _Stream:
        """Waits until ``count`` streams have been opened; returns the last."""
        with self._opened:
            if not self._opened.wait_for(lambda: len(self.streams) >= count, timeout):
                raise AssertionError(f"only {len(self.streams)} stream(s) opened, expected {count}")
            return self.streams[count - 1]

    def expire(self, token: str) -> None:
        """The token expires: refused from now on, and every open stream that carries it ends UNAUTHENTICATED."""
        with self._lock:
            self.valid.discard(token)
            streams = [s for s in self.streams if s.token == token]
        for stream in streams:
            stream.end(grpc.StatusCode.UNAUTHENTICATED, "the token has expired")

    # -- the service -----------------------------------------------------------------------

    def _authenticate(self, method: str, context: grpc.ServicerContext) -> Optional[str]:
        metadata = dict((m.key, m.value) for m in context.invocation_metadata())
        token = metadata.get("authorization", "").removeprefix("Bearer ")
        with self._lock:
            if token in self.valid:
                return token
            self.refused.append((method, token))
        context.abort(grpc.StatusCode.UNAUTHENTICATED, "the token has expired")
        return None

    def IssueCredentials(self, request: pb.IssueCredentialsRequest, context: grpc.ServicerContext) -> pb.Lease:
        self._authenticate("IssueCredentials", context)
        return pb.Lease(
            lease_id=LEASE_ID,
            path=request.path,
            credentials={"username": "FAKE-user", "password": "FAKE-password"},
            ttl=duration_pb2.Duration(seconds=self.ttl_seconds),
            renewable=True,
            expires_at=_stamp(dt.datetime.now(dt.timezone.utc) + dt.timedelta(seconds=self.ttl_seconds)),
        )

    def RevokeLease(self, request: pb.RevokeLeaseRequest, context: grpc.ServicerContext) -> pb.RevokeLeaseResponse:
        self._authenticate("RevokeLease", context)
        with self._lock:
            self.revoked.append(request.lease_id)
        return pb.RevokeLeaseResponse()

    def KeepAlive(self, request_iterator: Iterator[pb.KeepAliveRequest], context: grpc.ServicerContext) -> Iterator[pb.LeaseEvent]:
        token = self._authenticate("KeepAlive", context)
        stream = self._open(token, "KeepAlive")  # type: ignore[arg-type]
        first = next(request_iterator)
        expires = dt.datetime.now(dt.timezone.utc) + dt.timedelta(seconds=self.ttl_seconds)
        for lease_id in first.attach_lease_ids:
            yield pb.LeaseEvent(lease_id=lease_id, type=pb.LEASE_EVENT_TYPE_ATTACHED, expires_at=_stamp(expires), time=_stamp(dt.datetime.now(dt.timezone.utc)))
        yield from self._drain(stream, context)

    def WatchSecrets(self, request: pb.WatchSecretsRequest, context: grpc.ServicerContext) -> Iterator[pb.SecretEvent]:
        token = self._authenticate("WatchSecrets", context)
        stream = self._open(token, "WatchSecrets")  # type: ignore[arg-type]
        context.send_initial_metadata(())  # the broker's "watch in place" signal
        yield from self._drain(stream, context)

    def _open(self, token: str, method: str) -> _Stream:
        stream = _Stream(token, method)
        with self._opened:
            self.streams.append(stream)
            self._opened.notify_all()
        return stream

    def _drain(self, stream: _Stream, context: grpc.ServicerContext) -> Iterator[object]:
        while context.is_active():
            try:
                item = stream.outbox.get(timeout=0.1)
            except queue.Empty:
                continue
            if isinstance(item, tuple):
                context.abort(item[0], item[1])
            yield item


class ScriptedServer:
    def __init__(self, servicer: ScriptedStreams) -> None:
        self.servicer = servicer
        self.server = grpc.server(futures.ThreadPoolExecutor(max_workers=16))
        pb_grpc.add_SecretsBrokerServicer_to_server(servicer, self.server)
        self.port = self.server.add_insecure_port("127.0.0.1:0")
        self.server.start()

    @property
    def target(self) -> str:
        return f"127.0.0.1:{self.port}"

    def stop(self) -> None:
        self.server.stop(grace=None)


def lease_event(kind: int, lease_id: str = LEASE_ID, code: Optional[grpc.StatusCode] = None, message: str = "") -> pb.LeaseEvent:
    event = pb.LeaseEvent(lease_id=lease_id, type=kind, time=_stamp(dt.datetime.now(dt.timezone.utc)))
    if code is not None:
        event.error.code = code.value[0]
        event.error.message = message
    return event


def secret_event(path: str, version: str) -> pb.SecretEvent:
    return pb.SecretEvent(path=path, version=version, time=_stamp(dt.datetime.now(dt.timezone.utc)))

