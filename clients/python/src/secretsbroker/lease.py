"""Leases of dynamic credentials, kept alive over the broker's KeepAlive stream in a background thread."""

from __future__ import annotations

import datetime as _dt
import logging
import queue
import threading
import time
from typing import TYPE_CHECKING, Callable, Dict, Iterator, Optional, Union

import grpc

from . import _requests as rq
from ._streams import LeaseCore, Reconnect, now as _now
from .errors import NotFound, SecretsBrokerError, Unavailable, from_rpc_error
from .models import IssuedLease, LeaseEvent, LeaseEventType
from .v1 import broker_pb2 as pb

if TYPE_CHECKING:  # pragma: no cover
    from .client import Client

__all__ = ["Lease", "RotateCallback", "DEFAULT_HISTORY"]

_log = logging.getLogger("secretsbroker")

#: Called on the keeper thread after a rotation, with the lease (whose ``credentials`` are already the new ones).
RotateCallback = Callable[["Lease"], None]

#: How many of a lease's most recent events :meth:`Lease.events` can replay.
DEFAULT_HISTORY = 1000


class Lease:
    """Dynamic credentials kept alive by the broker for as long as this object is open.

    Made by :meth:`secretsbroker.Client.lease`, which issues the credentials (IssueCredentials) and starts
    a daemon thread holding a KeepAlive stream with the lease attached. The broker renews the lease at
    about 2/3 of its TTL; when it cannot be renewed any more (max TTL) the broker issues fresh
    credentials under a new lease and pushes them (ROTATED): :attr:`credentials` then returns the new
    ones and ``on_rotate`` is called. Read :attr:`credentials` each time you (re)connect rather than
    keeping a copy.

    If the stream breaks (broker restart, network, a load balancer), the keeper reconnects with
    exponential backoff and jitter and attaches the lease again: the broker keeps a detached lease for
    its grace period (30 s by default), and any replica can take it over. When the broker ends the
    stream as UNAUTHENTICATED (the caller's token expired), the keeper reads the token file again and
    reconnects at once; if the token is refused again (twice more in a row), the lease is lost with
    reason ``unauthenticated``.

    The lease becomes unusable, and :attr:`credentials` raises :class:`~secretsbroker.LeaseLost`, when
    the broker reports it REVOKED or EXPIRED, refuses to keep it alive (an ERROR event with
    PERMISSION_DENIED: the caller lacks ``renew``), no longer knows it on re-attach (the grace period
    passed), when its expiry passes without a renewal the client heard of (for example while the broker
    is unreachable; the client then adds an EXPIRED event itself), or once it is closed. Other per-lease
    ERROR events (a failed renewal the broker retries, for example) are reported by :meth:`events` but
    do not end anything.

    Closing (leaving the ``with`` block, or :meth:`close`) revokes the lease (RevokeLease) and ends the
    stream. A failed revocation is logged (logger ``secretsbroker``) and kept in :attr:`revoke_error`,
    not raised: once the stream is gone the broker revokes the lease itself after its grace period.

    Thread-safe. Never logs or shows (``repr``) a credential or the lease id.
    """

    def __init__(
        self,
        client: "Client",
        issued: IssuedLease,
        on_rotate: Optional[RotateCallback] = None,
        *,
        initial_backoff: float = 0.2,
        max_backoff: float = 10.0,
        revoke_timeout: Optional[float] = None,
        history: int = DEFAULT_HISTORY,
    ) -> None:
        """Starts keeping ``issued`` alive. Use :meth:`secretsbroker.Client.lease` rather than this."""
        self._client = client
        self._path = issued.path
        self._on_rotate = on_rotate
        self._reconnect = Reconnect(initial_backoff, max_backoff)
        self._revoke_timeout = revoke_timeout
        self._cond = threading.Condition()
        self._core = LeaseCore(issued, history)
        self._call: Optional[grpc.Future] = None
        self._stop = threading.Event()
        self.revoke_error: Optional[SecretsBrokerError] = None
        """Why the revocation on close failed, or None (not closed yet, revoked, or nothing to revoke)."""

        self._thread = threading.Thread(target=self._run, name="secretsbroker-lease-keeper", daemon=True)
        self._thread.start()

    # -- the current credentials ---------------------------------------------------------------

    @property
    def path(self) -> str:
        """The role path the lease was issued for, for example ``db/readonly``."""
        return self._path

    @property
    def current(self) -> IssuedLease:
        """The current lease and credentials as one consistent snapshot.

        Raises:
            LeaseLost: the lease was revoked, expired, refused, is unknown to the broker, or was closed.
        """
        with self._cond:
            self._check_expiry()
            if self._core.lost is not None:
                raise self._core.lost_error()
            return self._core.current

    @property
    def credentials(self) -> Dict[str, str]:
        """The current credential fields (a fresh dict each time; a rotation replaces them).

        Raises:
            LeaseLost: the lease was revoked, expired, refused, is unknown to the broker, or was closed.
        """
        return dict(self.current.credentials)

    @property
    def lease_id(self) -> str:
        """The current lease id (a rotation changes it; a secret: it allows revoking). Raises LeaseLost as :attr:`credentials`."""
        return self.current.lease_id

    @property
    def expires_at(self) -> Optional[_dt.datetime]:
        """When the current credentials expire unless renewed (UTC). Raises LeaseLost as :attr:`credentials`."""
        return self.current.expires_at

    @property
    def ttl(self) -> _dt.timedelta:
        """The current lease's TTL."""
        return self.current.ttl

    @property
    def renewable(self) -> bool:
        """Whether the backend allows renewing the current lease (if not, the broker rotates it before expiry)."""
        return self.current.renewable

    @property
    def active(self) -> bool:
        """True while the credentials are usable (not revoked, expired, refused, lost or closed)."""
        with self._cond:
            self._check_expiry()
            return self._core.lost is None

    @property
    def lost_reason(self) -> Optional[str]:
        """None while active; else ``revoked``, ``expired``, ``permission_denied``, ``not_found``,
        ``unauthenticated``, ``closed`` or ``client_closed``."""
        with self._cond:
            self._check_expiry()
            return self._core.lost.reason if self._core.lost is not None else None

    @property
    def connections(self) -> int:
        """How many times the keeper opened its KeepAlive stream (1 + reconnects)."""
        with self._cond:
            return self._core.connections

    # -- events --------------------------------------------------------------------------------

    def events(self, timeout: Optional[float] = None) -> Iterator[LeaseEvent]:
        """Iterates over the lease's events: those since it was issued (the most recent 1000 are kept),
        then new ones as they arrive.

        The iteration ends when the lease ends (after its REVOKED or EXPIRED event, or once it is closed),
        or when no event arrives within ``timeout`` seconds (None: wait as long as it takes). Several
        iterators may run at once, on any threads; each sees every event.
        """
        position = 0
        while True:
            with self._cond:
                event, position = self._next_event(position, None if timeout is None else time.monotonic() + timeout)
            if event is None:
                return
            yield event

    def wait_for(
        self,
        match: Union[LeaseEventType, Callable[[LeaseEvent], bool]],
        timeout: float,
    ) -> LeaseEvent:
        """Returns the first event since the lease was issued that matches (an event type or a predicate),
        waiting up to ``timeout`` seconds for it.

        Raises:
            TimeoutError: no matching event within ``timeout``.
            LeaseLost: the lease ended without a matching event.
        """
        predicate: Callable[[LeaseEvent], bool] = (lambda e: e.type == match) if isinstance(match, LeaseEventType) else match
        deadline = time.monotonic() + timeout
        position = 0
        while True:
            with self._cond:
                event, position = self._next_event(position, deadline)
                if event is None:
                    if self._core.finished and self._core.lost is not None:
                        raise self._core.lost_error()
                    raise TimeoutError(f"no matching lease event within {timeout:g}s")
            if predicate(event):
                return event

    def _next_event(self, position: int, deadline: Optional[float]) -> "tuple[Optional[LeaseEvent], int]":
        """With the lock held: the event at ``position`` (waiting until ``deadline``), or None at the end."""
        while True:
            self._check_expiry()
            event, position = self._core.event_at(position)
            if event is not None:
                return event, position
            if self._core.finished:
                return None, position
            remaining = None if deadline is None else deadline - time.monotonic()
            if remaining is not None and remaining <= 0:
                return None, position
            # Wake at the lease's expiry too, to notice it passing while no event comes.
            to_expiry = self._core.seconds_to_expiry(_now())
            if to_expiry is not None:
                remaining = to_expiry + 0.01 if remaining is None else min(remaining, to_expiry + 0.01)
            self._cond.wait(remaining)

    def _check_expiry(self) -> None:
        """With the lock held: a lease past its expiry is lost even if no EXPIRED event could arrive."""
        if self._core.check_expiry(_now()):
            self._stop.set()
            if self._call is not None:
                self._call.cancel()
            self._cond.notify_all()

    def wait_attached(self, timeout: Optional[float]) -> None:
        """Waits for the broker's answer to the first attach; raises its refusal (PermissionDenied when the
        caller lacks ``renew``, NotFound ...) or DeadlineExceeded. Used by :meth:`Client.lease`."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            while not self._core.attach_answered:
                if self._core.finished:
                    if self._core.lost is not None:
                        raise self._core.lost_error()
                    return
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    # Not answered yet (the broker may be restarting): the keeper goes on trying.
                    return
                self._cond.wait(remaining)
            if self._core.attach_error is not None:
                raise self._core.attach_error

    # -- lifecycle -----------------------------------------------------------------------------

    def close(self, revoke: bool = True) -> None:
        """Revokes the lease (unless ``revoke`` is False or it already ended) and ends the KeepAlive stream.

        Afterwards :attr:`credentials` raises :class:`~secretsbroker.LeaseLost` (reason ``closed``).
        Never raises for a failed revocation (see :attr:`revoke_error`). Safe to call twice.
        """
        with self._cond:
            if self._core.closed:
                return
            self._core.closed = True
            lease_id = self._core.current.lease_id
            was_active = self._core.lost is None
            # Credentials the broker refused to keep alive still work until their expiry: revoke them too.
            still_live = self._core.still_live_when_closed()
            if was_active:
                self._core.lose("closed", "the lease was closed (its with-block ended); issue a new lease to get credentials")
            self._cond.notify_all()
        self._stop.set()
        try:
            if revoke and still_live:
                self._revoke(lease_id)
        finally:
            with self._cond:
                call = self._call
            if call is not None:
                call.cancel()
            if self._thread is not threading.current_thread():
                self._thread.join(timeout=10)
            with self._cond:
                late, self._core.late_rotations = self._core.late_rotations, []
            for rotated_id in late if revoke else ():
                self._revoke(rotated_id)
            self._client._forget_lease(self)

    def _revoke(self, lease_id: str) -> None:
        try:
            self._client._call(self._client._stub.RevokeLease, rq.revoke_lease(lease_id), self._revoke_timeout, self._path)
        except NotFound:
            pass  # already gone (expired, or revoked by the broker)
        except SecretsBrokerError as error:
            self.revoke_error = error
            _log.warning(
                "secretsbroker: revoking the lease for %s failed (%s); the broker revokes it after its grace period",
                self._path,
                error,
            )

    def __enter__(self) -> "Lease":
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:
        with self._cond:
            return self._core.repr("Lease")

    # -- the keeper thread ---------------------------------------------------------------------

    def _run(self) -> None:
        try:
            while not self._stop.is_set():
                with self._cond:
                    self._check_expiry()
                    if self._core.lost is not None:
                        return
                    lease_id = self._core.current.lease_id
                requests: "queue.Queue[Optional[pb.KeepAliveRequest]]" = queue.Queue()
                requests.put(rq.attach(lease_id))
                error: SecretsBrokerError
                try:
                    # The token is read again for every connect, so a refreshed token file is picked up.
                    call = self._client._stub.KeepAlive(_drain(requests), metadata=self._client._metadata())
                except SecretsBrokerError as failure:  # the token file could not be read
                    error = failure
                except ValueError as failure:  # the channel is closed
                    if "closed" not in str(failure).lower():
                        raise
                    with self._cond:
                        if self._core.lost is None:
                            self._core.lose("client_closed", "the client was closed, so the lease can no longer be kept alive")
                            self._cond.notify_all()
                    return
                else:
                    with self._cond:
                        self._call = call
                        self._core.connections += 1
                    if self._stop.is_set():
                        call.cancel()
                    try:
                        for message in call:
                            self._reconnect.connected()
                            if self._handle(message):
                                call.cancel()  # the lease ended: nothing left to keep alive
                        error = Unavailable("the broker ended the KeepAlive stream", path=self._path)
                    except grpc.RpcError as failure:
                        error = from_rpc_error(failure, self._path)
                    finally:
                        requests.put(None)
                        with self._cond:
                            self._call = None
                if self._stop.is_set():
                    return
                delay = self._reconnect.delay(error)
                with self._cond:
                    self._check_expiry()
                    if self._core.lost is not None:
                        return
                    self._core.disconnected(error, delay, _now())
                    self._cond.notify_all()
                if delay is None:
                    return
                if delay > 0:
                    with self._cond:
                        to_expiry = self._core.seconds_to_expiry(_now())
                    # Wake at the expiry at the latest, to mark the lease lost then rather than at the next attempt.
                    self._stop.wait(delay if to_expiry is None else min(delay, to_expiry + 0.01))
        except Exception:  # a bug: never die silently
            _log.exception("secretsbroker: the lease keeper for %s stopped unexpectedly", self._path)
            with self._cond:
                if self._core.lost is None:
                    self._core.lose("not_found", "the lease keeper stopped unexpectedly (see the log); issue a new lease")
        finally:
            with self._cond:
                self._core.finished = True
                self._cond.notify_all()

    def _handle(self, message: pb.LeaseEvent) -> bool:
        """Applies one broker event; returns True when the lease has ended."""
        event = LeaseEvent._from_proto(message, self._path)
        if event is None:
            return False
        with self._cond:
            rotated = self._core.apply(event)
            ended = self._core.lost is not None
            self._cond.notify_all()
        if rotated and self._on_rotate is not None:
            try:
                self._on_rotate(self)
            except Exception:
                _log.exception("secretsbroker: the on_rotate callback for %s raised", self._path)
        return ended


def _drain(requests: "queue.Queue[Optional[pb.KeepAliveRequest]]") -> Iterator[pb.KeepAliveRequest]:
    """The request side of a KeepAlive stream: stays open (the broker treats a half-close as the end) until None."""
    while True:
        request = requests.get()
        if request is None:
            return
        yield request
