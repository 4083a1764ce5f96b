"""The asyncio client: :class:`secretsbroker.aio.Client` on ``grpc.aio``, for FastAPI-style services.

Same API as :class:`secretsbroker.Client`, as coroutines; leases and watches are async context managers::

    import secretsbroker.aio

    async with secretsbroker.aio.Client() as client:            # $SECRETSBROKER_ADDRESS, _TOKEN_FILE, _CA_FILE
        db = await client.get_secret("kv/teams/ml/db")
        async with client.lease("db/readonly") as lease:
            pool = await connect(**lease.credentials)
        async with client.watch(paths=["kv/teams/ml/db"]) as watch:
            async for event in watch:
                ...

Create the client inside the running event loop (for example in a FastAPI lifespan handler) and use it
from that loop only. Options, environment, errors, request checks and result types are the sync
client's (shared code in :mod:`secretsbroker._config`, :mod:`secretsbroker._requests`,
:mod:`secretsbroker._streams`).
"""

from __future__ import annotations

import weakref
from typing import Any, AsyncIterator, Awaitable, Callable, Generator, Generic, Iterable, List, Mapping, Optional, Sequence, Tuple, TypeVar, Union

import grpc
import grpc.aio

from .. import _requests as rq
from .._config import DEFAULT_TIMEOUT, ClientConfig, PathLike
from ..errors import Cancelled, from_rpc_error
from ..models import BatchResult, IssuedLease, ListPage, Rotation, Secret, SecretListing, WrittenSecret
from ..v1 import broker_pb2_grpc as pb_grpc
from ..v1 import crypto_pb2_grpc as crypto_grpc
from ._crypto import AsyncCryptoMethods
from ._lease import AsyncRotateCallback, Lease
from ._watch import SecretWatch

__all__ = ["Client", "Lease", "SecretWatch"]

T = TypeVar("T", Lease, SecretWatch)


class _Opening(Generic[T]):
    """What :meth:`Client.lease` and :meth:`Client.watch` return: await it for the object, or use it
    directly in ``async with`` (which closes the object at the end of the block)."""

    def __init__(self, open_: Callable[[], Awaitable[T]]) -> None:
        self._open = open_
        self._value: Optional[T] = None

    def __await__(self) -> Generator[Any, None, T]:
        return self._open().__await__()

    async def __aenter__(self) -> T:
        self._value = await self._open()
        return self._value

    async def __aexit__(self, *exc_info: object) -> None:
        if self._value is not None:
            await self._value.close()


class Client(AsyncCryptoMethods):
    """An asyncio connection to a SecretsBroker; the arguments are :class:`secretsbroker.Client`'s."""

    def __init__(
        self,
        target: Optional[str] = None,
        token: Optional[str] = None,
        token_file: Optional[PathLike] = None,
        tls: bool = False,
        ca_file: Optional[PathLike] = None,
        cert_file: Optional[PathLike] = None,
        key_file: Optional[PathLike] = None,
        timeout: Optional[float] = DEFAULT_TIMEOUT,
        *,
        max_attempts: int = 4,
        initial_backoff: float = 0.1,
        max_backoff: float = 2.0,
        wait_for_ready: bool = False,
        channel_options: Sequence[Tuple[str, Any]] = (),
    ) -> None:
        config = ClientConfig.resolve(
            target, token, token_file, tls, ca_file, cert_file, key_file, timeout,
            max_attempts, initial_backoff, max_backoff, wait_for_ready, channel_options,
        )
        self._tokens = config.tokens
        self._timeout = config.timeout
        self._wait_for_ready = config.wait_for_ready
        self.target = config.address
        credentials = config.channel_credentials()
        if credentials is not None:
            self._channel = grpc.aio.secure_channel(config.address, credentials, options=config.options)
        else:
            self._channel = grpc.aio.insecure_channel(config.address, options=config.options)
        self._stub = pb_grpc.SecretsBrokerStub(self._channel)
        self._crypto_stub = crypto_grpc.CryptoStub(self._channel)
        self._leases: "weakref.WeakSet[Lease]" = weakref.WeakSet()
        self._watches: "weakref.WeakSet[SecretWatch]" = weakref.WeakSet()

    async def close(self) -> None:
        """Closes (revoking) the leases and the watches this client opened, then the channel. Safe to call twice."""
        for lease in list(self._leases):
            await lease.close()
        for watch in list(self._watches):
            await watch.close()
        await self._channel.close()

    async def __aenter__(self) -> "Client":
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    def __repr__(self) -> str:
        return f"aio.Client(target={self.target!r})"

    # -- reads -------------------------------------------------------------------------------

    async def get_secret(
        self,
        path: str,
        version: Union[str, int, None] = None,
        stage: Optional[str] = None,
        *,
        max_age: Optional[float] = None,
        bypass_cache: bool = False,
        timeout: Optional[float] = None,
    ) -> Secret:
        """See :meth:`secretsbroker.Client.get_secret`."""
        request = rq.get_secret(path, version, stage, max_age, bypass_cache)
        return rq.secret(await self._call(self._stub.GetSecret, request, timeout, path))

    async def rotate_secret(self, path: str, *, timeout: Optional[float] = None) -> Rotation:
        """See :meth:`secretsbroker.Client.rotate_secret`."""
        return rq.rotation(await self._call(self._stub.RotateSecret, rq.rotate_secret(path), timeout, path))

    async def batch_get(self, paths: Iterable[str], *, timeout: Optional[float] = None) -> List[BatchResult]:
        """See :meth:`secretsbroker.Client.batch_get`."""
        request = rq.batch_get(paths)
        if request is None:
            return []
        return rq.batch_results(await self._call(self._stub.BatchGetSecrets, request, timeout, None))

    async def list_page(self, prefix: str, page_size: Optional[int] = None, page_token: str = "", *, timeout: Optional[float] = None) -> ListPage:
        """See :meth:`secretsbroker.Client.list_page`."""
        return rq.page(await self._call(self._stub.ListSecrets, rq.list_page(prefix, page_size, page_token), timeout, prefix))

    async def list(self, prefix: str, page_size: Optional[int] = None, *, timeout: Optional[float] = None) -> AsyncIterator[SecretListing]:
        """``async for entry in client.list(prefix)``: every secret beneath ``prefix``, fetching pages as needed."""
        token = ""
        while True:
            page = await self.list_page(prefix, page_size, token, timeout=timeout)
            for entry in page.secrets:
                yield entry
            token = page.next_page_token
            if not token:
                return

    # -- writes ------------------------------------------------------------------------------

    async def put_secret(
        self,
        path: str,
        data: Optional[Mapping[str, str]] = None,
        *,
        binary: Optional[bytes] = None,
        expected_version: Union[str, int, None] = None,
        timeout: Optional[float] = None,
    ) -> WrittenSecret:
        """See :meth:`secretsbroker.Client.put_secret`."""
        request = rq.put_secret(path, data, binary, expected_version)
        return rq.written(await self._call(self._stub.PutSecret, request, timeout, path))

    # -- leases and watches --------------------------------------------------------------------

    async def issue_credentials(self, path: str, *, timeout: Optional[float] = None) -> IssuedLease:
        """See :meth:`secretsbroker.Client.issue_credentials`."""
        return rq.issued(await self._call(self._stub.IssueCredentials, rq.issue_credentials(path), timeout, path))

    async def revoke_lease(self, lease_id: str, *, timeout: Optional[float] = None) -> None:
        """See :meth:`secretsbroker.Client.revoke_lease`."""
        await self._call(self._stub.RevokeLease, rq.revoke_lease(lease_id), timeout, None)

    def lease(
        self,
        path: str,
        on_rotate: Optional[AsyncRotateCallback] = None,
        *,
        timeout: Optional[float] = None,
        initial_backoff: float = 0.2,
        max_backoff: float = 10.0,
    ) -> "_Opening[Lease]":
        """Issues credentials for ``path`` and keeps their lease alive: ``async with client.lease(path) as lease``
        (revoked at the end of the block) or ``lease = await client.lease(path)``. ``on_rotate`` may be a
        coroutine function. See :meth:`secretsbroker.Client.lease`."""

        async def open_() -> Lease:
            issued = await self.issue_credentials(path, timeout=timeout)
            lease = Lease(self, issued, on_rotate, initial_backoff=initial_backoff, max_backoff=max_backoff, revoke_timeout=timeout)
            self._leases.add(lease)
            try:
                await lease.wait_attached(timeout if timeout is not None else self._timeout)
            except BaseException:
                await lease.close()
                raise
            return lease

        return _Opening(open_)

    def watch(
        self,
        paths: Optional[Iterable[str]] = None,
        prefixes: Optional[Iterable[str]] = None,
        *,
        timeout: Optional[float] = None,
        initial_backoff: float = 0.2,
        max_backoff: float = 10.0,
    ) -> "_Opening[SecretWatch]":
        """Watches static secrets: ``async with client.watch(paths=[...]) as watch: async for event in watch``.
        Returns once the broker has the watch in place. See :meth:`secretsbroker.Client.watch`."""
        request = rq.watch(paths, prefixes)  # argument errors raise here, before any await

        def open_call() -> grpc.aio.UnaryStreamCall:
            return self._stub.WatchSecrets(request, metadata=self._metadata(), wait_for_ready=self._wait_for_ready)

        async def open_() -> SecretWatch:
            watch = SecretWatch(self, open_call, initial_backoff=initial_backoff, max_backoff=max_backoff)
            self._watches.add(watch)
            return await watch._start(timeout if timeout is not None else self._timeout)

        return _Opening(open_)

    def _forget_lease(self, lease: Lease) -> None:
        self._leases.discard(lease)

    def _forget_watch(self, watch: SecretWatch) -> None:
        self._watches.discard(watch)

    # -- plumbing ----------------------------------------------------------------------------

    def _metadata(self) -> Tuple[Tuple[str, str], ...]:
        return tuple(self._tokens.metadata())

    async def _call(self, method: Any, request: Any, timeout: Optional[float], path: Optional[str]) -> Any:
        try:
            return await method(
                request,
                timeout=timeout if timeout is not None else self._timeout,
                metadata=self._metadata(),
                wait_for_ready=self._wait_for_ready,
            )
        except grpc.RpcError as error:
            raise from_rpc_error(error, path) from None
        except grpc.aio.UsageError as error:  # the channel is closed
            raise Cancelled("the client is closed", path=path) from error
