"""Watching static secrets for new versions (the broker's WatchSecrets stream)."""

from __future__ import annotations

import queue
import threading
from typing import TYPE_CHECKING, Iterator, Optional, Union

import grpc

from .errors import Cancelled, DeadlineExceeded, SecretsBrokerError, error_for_status, from_rpc_error
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
    ``with`` block, or closing the client, from any thread) and raises the matching
    :class:`~secretsbroker.SecretsBrokerError` if the stream fails (for example
    :class:`~secretsbroker.Unavailable` when the broker goes away: watch again, then re-read the
    secrets, since changes in between produce no event). :meth:`get` waits with a timeout.
    """

    def __init__(self, client: "Client", call: "grpc.Future", ready_timeout: Optional[float]) -> None:
        """Starts reading ``call`` and waits for the broker to confirm the watch. Use :meth:`Client.watch`."""
        self._client = client
        self._call = call
        self._events: "queue.Queue[Union[SecretEvent, _End]]" = queue.Queue()
        self._ready = threading.Event()
        self._setup_error: Optional[SecretsBrokerError] = None
        self._closed = False
        self._ended = False
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._read, name="secretsbroker-watch", daemon=True)
        self._thread.start()
        if not self._ready.wait(ready_timeout):
            self.close()
            raise DeadlineExceeded(f"the broker did not confirm the watch within {ready_timeout:g}s")
        if self._setup_error is not None:
            self.close()
            raise self._setup_error

    def _read(self) -> None:
        try:
            try:
                # The broker sends its response headers once the watch is in place; a refused watch
                # (PERMISSION_DENIED, INVALID_ARGUMENT ...) ends the call without any.
                self._call.initial_metadata()
                if self._call.done() and self._call.code() != grpc.StatusCode.OK:
                    self._setup_error = _error(self._call)
                    return
            except grpc.RpcError as error:
                self._setup_error = from_rpc_error(error)
                return
            finally:
                self._ready.set()
            for message in self._call:
                self._events.put(SecretEvent._from_proto(message))
            self._events.put(_End(None if self._closed else Cancelled("the broker ended the watch")))
        except grpc.RpcError as error:
            self._events.put(_End(None if self._closed else from_rpc_error(error)))

    def get(self, timeout: Optional[float] = None) -> Optional[SecretEvent]:
        """The next event, waiting up to ``timeout`` seconds (None: as long as it takes); None on timeout
        or once the watch has ended.

        Raises:
            SecretsBrokerError: the stream failed (raised once; afterwards the watch is ended).
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
        self._call.cancel()
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
