"""Stream logic shared by the sync and the asyncio client: a kept lease's state machine and the
reconnect policy of the KeepAlive and WatchSecrets streams. No I/O and no locking here: each client
wraps these in its own concurrency (a threading.Condition, or the event loop)."""

from __future__ import annotations

import dataclasses
import datetime as _dt
import random
from typing import List, Optional, Tuple

import grpc

from .errors import LeaseLost, NotFound, PermissionDenied, SecretsBrokerError, Unauthenticated
from .models import IssuedLease, LeaseEvent, LeaseEventType

#: How many times in a row a stream refused as UNAUTHENTICATED is reopened at once (the token file is read
#: again each time) before the refusal is surfaced to the caller.
AUTH_RETRIES = 2

# Stream failures worth reconnecting for: the broker or the network went away, or the broker ended the
# stream without a verdict on the request itself. Everything else is an answer (PERMISSION_DENIED,
# INVALID_ARGUMENT, ...) that a reconnect would only repeat.
_RETRYABLE = frozenset(
    {
        grpc.StatusCode.UNAVAILABLE,
        grpc.StatusCode.CANCELLED,
        grpc.StatusCode.UNKNOWN,
        grpc.StatusCode.INTERNAL,
        grpc.StatusCode.DEADLINE_EXCEEDED,
        grpc.StatusCode.RESOURCE_EXHAUSTED,
        grpc.StatusCode.ABORTED,
    }
)


class Reconnect:
    """When to reopen a broken stream: UNAUTHENTICATED (the token expired; the broker ends the stream)
    is retried at once, with the token file read again, up to :data:`AUTH_RETRIES` times in a row, then
    surfaced; UNAVAILABLE and other transient failures are retried with exponential backoff and jitter,
    without limit; anything else is surfaced. :meth:`connected` starts counting afresh."""

    def __init__(self, initial_backoff: float, max_backoff: float, auth_retries: int = AUTH_RETRIES) -> None:
        if initial_backoff <= 0 or max_backoff < initial_backoff:
            raise ValueError("backoff must satisfy 0 < initial_backoff <= max_backoff")
        self.initial_backoff = initial_backoff
        self.max_backoff = max_backoff
        self.auth_retries = auth_retries
        self._failures = 0
        self._auth_failures = 0

    def connected(self) -> None:
        self._failures = 0
        self._auth_failures = 0

    def delay(self, error: SecretsBrokerError) -> Optional[float]:
        """Seconds to wait before reconnecting after ``error``, or None: give up and surface it."""
        if isinstance(error, Unauthenticated):
            self._auth_failures += 1
            return 0.0 if self._auth_failures <= self.auth_retries else None
        if error.code not in _RETRYABLE:
            return None
        self._failures += 1
        return min(self.max_backoff, self.initial_backoff * (2 ** min(self._failures - 1, 16))) * random.uniform(0.5, 1.0)


class LeaseCore:
    """The state of one kept lease: the current credentials, whether (and why) it is lost, and its
    event history. Callers hold their own lock around every method."""

    def __init__(self, issued: IssuedLease, history: int) -> None:
        self.path = issued.path
        self.current = issued
        self.lost: Optional[LeaseLost] = None
        self.history: List[LeaseEvent] = []
        self.history_base = 0  # sequence number of self.history[0]
        self.history_size = max(1, history)
        self.finished = False  # the keeper has ended: no more events
        self.closed = False
        self.late_rotations: List[str] = []  # leases the broker rotated to while close() was revoking
        self.connections = 0
        self.attach_answered = False  # the broker answered the first attach (ATTACHED or ERROR)
        self.attach_error: Optional[SecretsBrokerError] = None

    def apply(self, event: LeaseEvent) -> bool:
        """Applies one broker event and records it; returns True when it rotated the credentials."""
        rotated = False
        if self.closed and event.type == LeaseEventType.ROTATED and event.rotated_to is not None and event.lease_id == self.current.lease_id:
            # A rotation raced close(): revoke the new lease too, rather than leave it to the grace period.
            self.late_rotations.append(event.rotated_to.lease_id)
        if event.lease_id == self.current.lease_id and self.lost is None:
            if event.type == LeaseEventType.ROTATED and event.rotated_to is not None:
                self.current = event.rotated_to
                rotated = True
            elif event.type in (LeaseEventType.RENEWED, LeaseEventType.ATTACHED) and event.expires_at is not None:
                self.current = dataclasses.replace(self.current, expires_at=event.expires_at)
            elif event.type == LeaseEventType.REVOKED:
                self.lose("revoked", "the broker revoked the lease; its credentials no longer work (issue a new lease)")
            elif event.type == LeaseEventType.EXPIRED:
                self.lose("expired", "the lease expired before it could be renewed; its credentials no longer work (issue a new lease)")
            elif event.type == LeaseEventType.ERROR and isinstance(event.error, NotFound):
                # The answer to attaching it: the broker no longer knows the lease (the grace period
                # after a disconnect passed, or it expired meanwhile).
                self.lose("not_found", "the broker no longer knows the lease (it expired or was revoked while disconnected); issue a new lease")
            elif event.type == LeaseEventType.ERROR and isinstance(event.error, PermissionDenied):
                # Attaching or renewing was refused (no `renew` grant, or the grant was removed): the broker
                # will not renew the lease, so its credentials end at its expiry at the latest.
                self.lose("permission_denied", "the broker refused to keep the lease alive (the caller lacks the renew grant); issue a new lease once allowed")
            if event.type in (LeaseEventType.ATTACHED, LeaseEventType.ERROR) and not self.attach_answered:
                self.attach_answered = True
                self.attach_error = event.error if event.type == LeaseEventType.ERROR else None
        self.publish(event)
        return rotated

    def disconnected(self, error: SecretsBrokerError, delay: Optional[float], now: _dt.datetime) -> None:
        """Records a broken stream (a DISCONNECTED event); with ``delay`` None (see :meth:`Reconnect.delay`)
        the lease cannot be kept alive any more and is lost."""
        self.publish(LeaseEvent(LeaseEventType.DISCONNECTED, self.current.lease_id, time=now, error=error))
        if delay is not None:
            return
        # The token was refused again after re-reading it, or the broker gave an answer a reconnect would
        # only repeat.
        reason = "unauthenticated" if error.code == grpc.StatusCode.UNAUTHENTICATED else error.code.name.lower()
        self.lose(reason, f"the KeepAlive stream was refused ({error}); the broker revokes the lease after its grace period")
        if not self.attach_answered:
            self.attach_answered, self.attach_error = True, error

    def still_live_when_closed(self) -> bool:
        """Whether closing should revoke: the lease is active, or was refused while its credentials still work."""
        return self.lost is None or self.lost.reason in ("permission_denied", "unauthenticated")

    def check_expiry(self, now: _dt.datetime) -> bool:
        """Marks the lease lost once its expiry passed without a renewal the client heard of (the stream
        may be down, so no EXPIRED event can arrive); publishes a client-side EXPIRED event. True when it did.

        The broker does not renew a lease while it is detached, so a lease past its expiry is expired in
        the backend too, whether or not the client hears about it.
        """
        expires_at = self.current.expires_at
        if self.lost is not None or expires_at is None or now < expires_at:
            return False
        self.lose("expired", "the lease expired: its expiry passed without a renewal (the broker could not be reached in time); issue a new lease")
        self.publish(LeaseEvent(LeaseEventType.EXPIRED, self.current.lease_id, expires_at=expires_at, time=now))
        return True

    def seconds_to_expiry(self, now: _dt.datetime) -> Optional[float]:
        if self.lost is not None or self.current.expires_at is None:
            return None
        return max(0.0, (self.current.expires_at - now).total_seconds())

    def publish(self, event: LeaseEvent) -> None:
        self.history.append(event)
        overflow = len(self.history) - self.history_size
        if overflow > 0:
            del self.history[:overflow]
            self.history_base += overflow

    def event_at(self, position: int) -> Tuple[Optional[LeaseEvent], int]:
        """The event at ``position`` (skipping those dropped from the history), or None if not there yet."""
        position = max(position, self.history_base)
        index = position - self.history_base
        if index < len(self.history):
            return self.history[index], position + 1
        return None, position

    def lose(self, reason: str, message: str) -> None:
        self.lost = LeaseLost(message, reason=reason, path=self.path)

    def lost_error(self) -> LeaseLost:
        assert self.lost is not None
        # A fresh exception each time, so tracebacks do not pile up on one instance.
        return LeaseLost(self.lost.message, reason=self.lost.reason, path=self.lost.path)

    def repr(self, kind: str) -> str:
        state = "active" if self.lost is None else self.lost.reason
        expires = self.current.expires_at.isoformat() if self.current.expires_at else None
        return f"{kind}(path={self.path!r}, state={state!r}, expires_at={expires!r})"


def now() -> _dt.datetime:
    return _dt.datetime.now(tz=_dt.timezone.utc)
