"""Watching static secrets for new versions (the broker's WatchSecrets stream)."""

from __future__ import annotations

import queue
import threading
from typing import TYPE_CHECKING, Callable, Iterator, Optional, Union

import grpc

from ._streams import Reconnect
from .errors import Cancelled, DeadlineExceeded, SecretsBrokerError, Unavailable, error_for_status, from_rpc_error
from .models import SecretEvent

if TYPE_CHECKING:  # pragma: no cover
    from .client import Client

__all__ = ["SecretWatch"]


class _End:
    """Queue marker: the stream ended, with ``error`` unless it was closed by the caller."""

    def __init__(self, error: Optional[SecretsBrokerError]) -> None:
        self.error = error


class SecretWatch:
    """An open WatchSecrets stream: iterate over it for :class:`~secretsbroker.SecretEvent` values.

    Made by :meth:`secretsbroker.Client.watch`, which returns once the broker has the watch in place, so
    every change after that produces an event. The broker polls each mount's version metadata (every
    30 s by default, ``Broker:Watch``), so an event follows a change by at most that interval; it drops
    its cached value before sending the event, so a ``get_secret`` right after returns the new version.

    Iteration blocks until the next event; it ends when the watch is closed (:meth:`close`, leaving the
    ``with`` block, or closing the client, from any thread). :meth:`get` waits with a timeout.

    The watch survives a broken stream: when the broker or the network goes away (UNAVAILABLE), it
    subscribes again with exponential backoff; when the broker ends the stream as UNAUTHENTICATED (the
    caller's token expired), it reads the token file again and subscribes again at once. A change made
    while no stream was open produces no event: after a reconnect (:attr:`subscriptions` grew) re-read the
    secrets you keep. Iteration raises the matching :class:`~secretsbroker.SecretsBrokerError` only
    when the watch cannot go on: the token is refused again after re-reading it (Unauthenticated), or the
    broker refuses the subscription (PermissionDenied when the grant was removed, ...).
    """

    def __init__(
        self,
        client: "Client",
        open_call: Callable[[], "grpc.Future"],
        ready_timeout: Optional[float],
        *,
        initial_backoff: float = 0.2,
        max_backoff: float = 10.0,
    ) -> None:
        """Subscribes and waits for the broker to confirm the watch. Use :meth:`Client.watch`."""
        self._client = client
        self._open_call = open_call
        self._reconnect = Reconnect(initial_backoff, max_backoff)
        self._events: "queue.Queue[Union[SecretEvent, _End]]" = queue.Queue()
        self._ready = threading.Event()
        self._setup_error: Optional[SecretsBrokerError] = None
        self._closed = False
        self._ended = False
        self._subscriptions = 0
        self._call: Optional[grpc.Future] = None
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._run, name="secretsbroker-watch", daemon=True)
        self._thread.start()
        if not self._ready.wait(ready_timeout):
            self.close()
            raise DeadlineExceeded(f"the broker did not confirm the watch within {ready_timeout:g}s")
        if self._setup_error is not None:
            self.close()
            raise self._setup_error

    @property
    def subscriptions(self) -> int:
        """How many times the broker confirmed the watch (1 + successful re-subscriptions)."""
        with self._lock:
            return self._subscriptions

    def _run(self) -> None:
        try:
            self._loop()
        finally:
            self._ready.set()

    def _loop(self) -> None:
        while True:
            error = self._subscribe_and_read()
            if self._closed:
                self._events.put(_End(None))
                return
            if not self._ready.is_set():  # the first subscription failed: watch() raises it
                self._setup_error = error
                self._ready.set()
                return
            delay = self._reconnect.delay(error)
            if delay is None:
                self._events.put(_End(error))
                return
            if delay > 0 and self._stop.wait(delay):
                self._events.put(_End(None))
                return

    def _subscribe_and_read(self) -> SecretsBrokerError:
        """One subscription: returns why it ended (anything, when closed by the caller)."""
        try:
            call = self._open_call()  # reads the token (file) again
        except SecretsBrokerError as error:
            return error
        except ValueError as error:  # the channel is closed
            if "closed" not in str(error).lower():
                raise
            return Cancelled("the client is closed")
        with self._lock:
            self._call = call
            if self._closed:
                call.cancel()
        try:
            # The broker sends its response headers once the watch is in place; a refused watch
            # (PERMISSION_DENIED, INVALID_ARGUMENT ...) ends the call without any.
            call.initial_metadata()
            if call.done() and call.code() != grpc.StatusCode.OK:
                return _error(call)
            with self._lock:
                self._subscriptions += 1
            self._reconnect.connected()
            self._ready.set()
            for message in call:
                self._events.put(SecretEvent._from_proto(message))
            return Unavailable("the broker ended the watch")
        except grpc.RpcError as error:
            return from_rpc_error(error)
        finally:
            with self._lock:
                self._call = None

    def get(self, timeout: Optional[float] = None) -> Optional[SecretEvent]:
        """The next event, waiting up to ``timeout`` seconds (None: as long as it takes); None on timeout
        or once the watch has ended.

        Raises:
            SecretsBrokerError: the watch cannot go on (raised once; afterwards the watch is ended).
        """
        if self._ended:
            return None
        try:
            item = self._events.get(timeout=timeout)
        except queue.Empty:
            return None
        if isinstance(item, _End):
            self._ended = True
            self._events.put(item)  # later calls (from other threads) see the end too
            if item.error is not None and not self._closed:
                error, item.error = item.error, None
                raise error
            return None
        return item

    def __iter__(self) -> Iterator[SecretEvent]:
        return self

    def __next__(self) -> SecretEvent:
        event = self.get()
        if event is None:
            raise StopIteration
        return event

    @property
    def closed(self) -> bool:
        """True once :meth:`close` was called."""
        return self._closed

    def close(self) -> None:
        """Cancels the watch; iteration ends (a blocked ``next()`` returns). Safe to call twice, from any thread."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            call = self._call
        self._stop.set()
        if call is not None:
            call.cancel()
        if self._thread is not threading.current_thread():
            self._thread.join(timeout=10)
        self._client._forget_watch(self)

    def __enter__(self) -> "SecretWatch":
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"SecretWatch(closed={self._closed})"


def _error(call: "grpc.Future") -> SecretsBrokerError:
    code = call.code() or grpc.StatusCode.UNKNOWN
    return error_for_status(code, call.details() or code.name.lower().replace("_", " "))
