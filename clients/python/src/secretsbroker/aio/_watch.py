"""Watching static secrets for new versions with the asyncio client (the broker's WatchSecrets stream)."""

from __future__ import annotations

import asyncio
import contextlib
from typing import TYPE_CHECKING, AsyncIterator, Callable, Optional, Union

import grpc

from .._streams import Reconnect
from ..errors import Cancelled, DeadlineExceeded, SecretsBrokerError, Unavailable, error_for_status, from_rpc_error
from ..models import SecretEvent

if TYPE_CHECKING:  # pragma: no cover
    from . import Client

__all__ = ["SecretWatch"]


class _End:
    def __init__(self, error: Optional[SecretsBrokerError]) -> None:
        self.error = error


class SecretWatch:
    """An open WatchSecrets stream: ``async for event in watch``. The asyncio twin of
    :class:`secretsbroker.SecretWatch` (same behaviour: re-subscribes after a broken stream with backoff
    and at once, with the token file read again, when the broker ends it UNAUTHENTICATED; raises only when
    the watch cannot go on). Made by :meth:`secretsbroker.aio.Client.watch`."""

    def __init__(self, client: "Client", open_call: Callable[[], "grpc.aio.UnaryStreamCall"], *, initial_backoff: float, max_backoff: float) -> None:
        self._client = client
        self._open_call = open_call
        self._reconnect = Reconnect(initial_backoff, max_backoff)
        self._events: "asyncio.Queue[Union[SecretEvent, _End]]" = asyncio.Queue()
        self._ready: "asyncio.Future[Optional[SecretsBrokerError]]" = asyncio.get_running_loop().create_future()
        self._closed = False
        self._ended = False
        self._subscriptions = 0
        self._task = asyncio.get_running_loop().create_task(self._run(), name="secretsbroker-watch")

    async def _start(self, ready_timeout: Optional[float]) -> "SecretWatch":
        try:
            error = await asyncio.wait_for(asyncio.shield(self._ready), ready_timeout)
        except asyncio.TimeoutError:
            await self.close()
            raise DeadlineExceeded(f"the broker did not confirm the watch within {ready_timeout:g}s") from None
        if error is not None:
            await self.close()
            raise error
        return self

    @property
    def subscriptions(self) -> int:
        """How many times the broker confirmed the watch (1 + successful re-subscriptions)."""
        return self._subscriptions

    async def _run(self) -> None:
        try:
            while True:
                error = await self._subscribe_and_read()
                if self._closed:
                    return
                if not self._ready.done():
                    self._ready.set_result(error)
                    return
                delay = self._reconnect.delay(error)
                if delay is None:
                    self._events.put_nowait(_End(error))
                    return
                if delay > 0:
                    await asyncio.sleep(delay)
        except asyncio.CancelledError:
            pass
        finally:
            if not self._ready.done():
                self._ready.set_result(None)
            self._events.put_nowait(_End(None))

    async def _subscribe_and_read(self) -> SecretsBrokerError:
        try:
            call = self._open_call()  # reads the token (file) again
        except SecretsBrokerError as error:
            return error
        except grpc.aio.UsageError:
            return Cancelled("the client is closed")
        try:
            # The broker sends its response headers once the watch is in place; a refused watch ends without.
            await call.initial_metadata()
            if call.done() and await call.code() != grpc.StatusCode.OK:
                code = await call.code()
                return error_for_status(code, await call.details() or code.name.lower().replace("_", " "))
            self._subscriptions += 1
            self._reconnect.connected()
            if not self._ready.done():
                self._ready.set_result(None)
            async for message in call:
                self._events.put_nowait(SecretEvent._from_proto(message))
            return Unavailable("the broker ended the watch")
        except grpc.RpcError as error:
            return from_rpc_error(error)
        finally:
            call.cancel()

    async def get(self, timeout: Optional[float] = None) -> Optional[SecretEvent]:
        """The next event within ``timeout`` seconds (None: as long as it takes); None on timeout or once ended.

        Raises:
            SecretsBrokerError: the watch cannot go on (raised once; afterwards the watch is ended).
        """
        if self._ended:
            return None
        try:
            item = await asyncio.wait_for(self._events.get(), timeout)
        except asyncio.TimeoutError:
            return None
        if isinstance(item, _End):
            self._ended = True
            self._events.put_nowait(item)
            if item.error is not None and not self._closed:
                error, item.error = item.error, None
                raise error
            return None
        return item

    def __aiter__(self) -> AsyncIterator[SecretEvent]:
        return self

    async def __anext__(self) -> SecretEvent:
        event = await self.get()
        if event is None:
            raise StopAsyncIteration
        return event

    @property
    def closed(self) -> bool:
        return self._closed

    async def close(self) -> None:
        """Cancels the watch; iteration ends. Safe to call twice."""
        if self._closed:
            return
        self._closed = True
        if self._task is not asyncio.current_task():
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        self._client._forget_watch(self)

    async def __aenter__(self) -> "SecretWatch":
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    def __repr__(self) -> str:
        return f"SecretWatch(closed={self._closed})"
