"""Leases of dynamic credentials for the asyncio client, kept alive by a task on the event loop.

The state machine (what each broker event does, when a lease counts as lost) and the reconnect policy are
:mod:`secretsbroker._streams`', shared with the thread-based :class:`secretsbroker.Lease`.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as _dt
import inspect
import logging
import time
from typing import TYPE_CHECKING, AsyncIterator, Awaitable, Callable, Dict, Optional, Tuple, Union

import grpc

from .. import _requests as rq
from .._streams import LeaseCore, Reconnect, now as _now
from ..errors import NotFound, SecretsBrokerError, Unavailable, from_rpc_error
from ..lease import DEFAULT_HISTORY
from ..models import IssuedLease, LeaseEvent, LeaseEventType
from ..v1 import broker_pb2 as pb

if TYPE_CHECKING:  # pragma: no cover
    from . import Client

__all__ = ["Lease", "AsyncRotateCallback"]

_log = logging.getLogger("secretsbroker")

#: Called on the keeper task after a rotation (a plain function or a coroutine function), with the lease.
AsyncRotateCallback = Callable[["Lease"], Union[None, Awaitable[None]]]


class Lease:
    """Dynamic credentials kept alive by the broker while this object is open: the asyncio twin of
    :class:`secretsbroker.Lease`, with the same members, where :meth:`events` is an async iterator and
    :meth:`wait_for`, :meth:`close` are coroutines. Made by :meth:`secretsbroker.aio.Client.lease`.

    A task on the event loop holds the KeepAlive stream: it reconnects with backoff when the stream breaks,
    reads the token file again and reconnects at once when the broker ends the stream UNAUTHENTICATED (the
    token expired), and marks the lease lost when it is revoked, expired, refused or its expiry passes
    unheard. ``async with`` (or :meth:`close`) revokes it. Never shows a credential or the lease id.
    """

    def __init__(
        self,
        client: "Client",
        issued: IssuedLease,
        on_rotate: Optional[AsyncRotateCallback] = None,
        *,
        initial_backoff: float = 0.2,
        max_backoff: float = 10.0,
        revoke_timeout: Optional[float] = None,
        history: int = DEFAULT_HISTORY,
    ) -> None:
        """Starts keeping ``issued`` alive (call inside the event loop). Use :meth:`Client.lease`."""
        self._client = client
        self._path = issued.path
        self._on_rotate = on_rotate
        self._reconnect = Reconnect(initial_backoff, max_backoff)
        self._revoke_timeout = revoke_timeout
        self._core = LeaseCore(issued, history)
        self._changed = asyncio.Event()
        self._call: Optional[grpc.aio.StreamStreamCall] = None
        self._stopping = False
        self.revoke_error: Optional[SecretsBrokerError] = None
        """Why the revocation on close failed, or None."""
        self._task = asyncio.get_running_loop().create_task(self._run(), name="secretsbroker-lease-keeper")

    # -- the current credentials (same members as the sync Lease) -------------------------------

    @property
    def path(self) -> str:
        return self._path

    @property
    def current(self) -> IssuedLease:
        """The current lease and credentials. Raises LeaseLost once the lease is unusable."""
        self._check_expiry()
        if self._core.lost is not None:
            raise self._core.lost_error()
        return self._core.current

    @property
    def credentials(self) -> Dict[str, str]:
        return dict(self.current.credentials)

    @property
    def lease_id(self) -> str:
        return self.current.lease_id

    @property
    def expires_at(self) -> Optional[_dt.datetime]:
        return self.current.expires_at

    @property
    def ttl(self) -> _dt.timedelta:
        return self.current.ttl

    @property
    def renewable(self) -> bool:
        return self.current.renewable

    @property
    def active(self) -> bool:
        self._check_expiry()
        return self._core.lost is None

    @property
    def lost_reason(self) -> Optional[str]:
        self._check_expiry()
        return self._core.lost.reason if self._core.lost is not None else None

    @property
    def connections(self) -> int:
        return self._core.connections

    # -- events --------------------------------------------------------------------------------

    async def events(self, timeout: Optional[float] = None) -> AsyncIterator[LeaseEvent]:
        """Every event since issue, then new ones; ends with the lease or after ``timeout`` s without one."""
        position = 0
        while True:
            event, position = await self._next_event(position, None if timeout is None else time.monotonic() + timeout)
            if event is None:
                return
            yield event

    async def wait_for(self, match: Union[LeaseEventType, Callable[[LeaseEvent], bool]], timeout: float) -> LeaseEvent:
        """The first matching event since issue. Raises TimeoutError, or LeaseLost when the lease ended first."""
        predicate: Callable[[LeaseEvent], bool] = (lambda e: e.type == match) if isinstance(match, LeaseEventType) else match
        deadline = time.monotonic() + timeout
        position = 0
        while True:
            event, position = await self._next_event(position, deadline)
            if event is None:
                if self._core.finished and self._core.lost is not None:
                    raise self._core.lost_error()
                raise TimeoutError(f"no matching lease event within {timeout:g}s")
            if predicate(event):
                return event

    async def _next_event(self, position: int, deadline: Optional[float]) -> Tuple[Optional[LeaseEvent], int]:
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
            to_expiry = self._core.seconds_to_expiry(_now())
            if to_expiry is not None:
                remaining = to_expiry + 0.01 if remaining is None else min(remaining, to_expiry + 0.01)
            changed = self._changed
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(changed.wait(), remaining)

    def _notify(self) -> None:
        self._changed.set()
        self._changed = asyncio.Event()

    def _check_expiry(self) -> None:
        if self._core.check_expiry(_now()):
            self._stopping = True
            if self._task is not asyncio.current_task():
                self._task.cancel()
            self._notify()

    async def wait_attached(self, timeout: Optional[float]) -> None:
        """Waits for the broker's answer to the first attach and raises its refusal (see the sync Lease)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while not self._core.attach_answered:
            if self._core.finished:
                if self._core.lost is not None:
                    raise self._core.lost_error()
                return
            remaining = None if deadline is None else deadline - time.monotonic()
            if remaining is not None and remaining <= 0:
                return
            changed = self._changed
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(changed.wait(), remaining)
        if self._core.attach_error is not None:
            raise self._core.attach_error

    # -- lifecycle -----------------------------------------------------------------------------

    async def close(self, revoke: bool = True) -> None:
        """Revokes the lease (unless ``revoke`` is False or it already ended) and ends the stream. Never raises
        for a failed revocation (see :attr:`revoke_error`). Safe to call twice."""
        if self._core.closed:
            return
        self._core.closed = True
        lease_id = self._core.current.lease_id
        still_live = self._core.still_live_when_closed()
        if self._core.lost is None:
            self._core.lose("closed", "the lease was closed (its with-block ended); issue a new lease to get credentials")
        self._stopping = True
        self._notify()
        try:
            if revoke and still_live:
                await self._revoke(lease_id)
        finally:
            if self._task is not asyncio.current_task():
                self._task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await self._task
            late, self._core.late_rotations = self._core.late_rotations, []
            for rotated_id in late if revoke else ():
                await self._revoke(rotated_id)
            self._client._forget_lease(self)

    async def _revoke(self, lease_id: str) -> None:
        try:
            await self._client._call(self._client._stub.RevokeLease, rq.revoke_lease(lease_id), self._revoke_timeout, self._path)
        except NotFound:
            pass
        except SecretsBrokerError as error:
            self.revoke_error = error
            _log.warning("secretsbroker: revoking the lease for %s failed (%s); the broker revokes it after its grace period", self._path, error)

    async def __aenter__(self) -> "Lease":
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    def __repr__(self) -> str:
        return self._core.repr("Lease")

    # -- the keeper task -----------------------------------------------------------------------

    async def _run(self) -> None:
        try:
            while not self._stopping:
                self._check_expiry()
                if self._core.lost is not None:
                    return
                error = await self._connect_once(self._core.current.lease_id)
                if self._stopping:
                    return
                delay = self._reconnect.delay(error)
                self._check_expiry()
                if self._core.lost is not None:
                    return
                self._core.disconnected(error, delay, _now())
                self._notify()
                if delay is None:
                    return
                if delay > 0:
                    to_expiry = self._core.seconds_to_expiry(_now())
                    await asyncio.sleep(delay if to_expiry is None else min(delay, to_expiry + 0.01))
        except asyncio.CancelledError:
            pass  # close(), or the lease expired
        except Exception:  # a bug: never die silently
            _log.exception("secretsbroker: the lease keeper for %s stopped unexpectedly", self._path)
            if self._core.lost is None:
                self._core.lose("not_found", "the lease keeper stopped unexpectedly (see the log); issue a new lease")
        finally:
            self._core.finished = True
            self._notify()

    async def _connect_once(self, lease_id: str) -> SecretsBrokerError:
        """One KeepAlive stream with the lease attached; returns why it ended."""
        done = asyncio.Event()

        async def requests() -> AsyncIterator[pb.KeepAliveRequest]:
            yield rq.attach(lease_id)
            await done.wait()  # the broker treats a half-close as the end of the stream

        try:
            # The token is read again for every connect, so a refreshed token file is picked up.
            call = self._client._stub.KeepAlive(requests(), metadata=self._client._metadata())
        except SecretsBrokerError as error:  # the token file could not be read
            return error
        except grpc.aio.UsageError:  # the channel is closed
            if self._core.lost is None:
                self._core.lose("client_closed", "the client was closed, so the lease can no longer be kept alive")
            self._stopping = True
            return Unavailable("the client is closed", path=self._path)
        self._call = call
        self._core.connections += 1
        self._notify()
        try:
            async for message in call:
                self._reconnect.connected()
                if await self._handle(message):
                    call.cancel()  # the lease ended: nothing left to keep alive
                    self._stopping = True
                    break
            return Unavailable("the broker ended the KeepAlive stream", path=self._path)
        except grpc.RpcError as error:
            return from_rpc_error(error, self._path)
        finally:
            done.set()
            self._call = None

    async def _handle(self, message: pb.LeaseEvent) -> bool:
        event = LeaseEvent._from_proto(message, self._path)
        if event is None:
            return False
        rotated = self._core.apply(event)
        ended = self._core.lost is not None
        self._notify()
        if rotated and self._on_rotate is not None:
            try:
                result = self._on_rotate(self)
                if inspect.isawaitable(result):
                    await result
            except Exception:
                _log.exception("secretsbroker: the on_rotate callback for %s raised", self._path)
        return ended
