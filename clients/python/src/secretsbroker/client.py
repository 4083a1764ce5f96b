"""The SecretsBroker client: a thin, typed layer over the generated gRPC stubs."""

from __future__ import annotations

import threading
import weakref
from typing import Any, Iterable, Iterator, List, Mapping, Optional, Sequence, Tuple, Union

import grpc

from . import _requests as rq
from ._config import ADDRESS_ENV, CA_FILE_ENV, DEFAULT_TIMEOUT, TOKEN_ENV, TOKEN_FILE_ENV, ClientConfig, PathLike as _PathLike
from .errors import Cancelled, from_rpc_error
from .lease import Lease, RotateCallback
from .models import BatchResult, IssuedLease, ListPage, Rotation, Secret, SecretListing, WrittenSecret
from .watch import SecretWatch
from ._crypto_calls import CryptoMethods
from .v1 import broker_pb2_grpc as pb_grpc
from .v1 import crypto_pb2_grpc as crypto_grpc

__all__ = ["Client", "ADDRESS_ENV", "TOKEN_ENV", "TOKEN_FILE_ENV", "CA_FILE_ENV", "DEFAULT_TIMEOUT"]


class Client(CryptoMethods):
    """A connection to a SecretsBroker.

    Example::

        with Client("broker.example.internal:5151", tls=True, token_file="/var/run/secrets/tokens/broker") as client:
            db = client.get_secret("kv/teams/alpha/db")
            connect(user=db["username"], password=db["password"])

    Configured from the environment, ``Client()`` (or the module-level :func:`secretsbroker.get_secret`)
    takes the address from ``$SECRETSBROKER_ADDRESS``, the token file from ``$SECRETSBROKER_TOKEN_FILE``
    and a CA bundle (which turns TLS on) from ``$SECRETSBROKER_CA_FILE``; arguments win over the environment.

    Credentials: every call sends ``authorization: Bearer <token>``. The token is ``token`` if given;
    otherwise the content of ``token_file``, read again on every call so that rotated tokens (for
    example Kubernetes projected service account tokens) are picked up without a restart; otherwise
    the file named by ``$SECRETSBROKER_TOKEN_FILE`` or the token in ``$SECRETSBROKER_TOKEN``. With none
    of these the call carries no token and the broker answers :class:`~secretsbroker.Unauthenticated`.

    Transport: plaintext HTTP/2 by default (development only: the token travels in clear). ``tls=True``,
    a target starting with ``https://``, or any of ``ca_file``/``cert_file``/``key_file`` selects TLS;
    ``ca_file`` replaces the system roots, ``cert_file`` + ``key_file`` present a client certificate (mTLS).

    Deadlines and retries: each call gets a deadline of ``timeout`` seconds (None: no deadline), which
    covers every attempt. Calls that fail UNAVAILABLE are retried by gRPC's retry policy up to
    ``max_attempts`` times in all, with exponential backoff from ``initial_backoff`` up to ``max_backoff``
    seconds. All reads are idempotent, so retrying them is safe.

    Leases (:meth:`lease`) and watches (:meth:`watch`) are long-lived streams without a deadline that
    survive a broken connection (reconnect with backoff) and an expired token (the token file is read
    again and the stream reopened at once); closing the client closes (and revokes) the leases and
    watches it opened.

    The client is thread-safe and holds one channel; close it (or use ``with``) when done.
    """

    def __init__(
        self,
        target: Optional[str] = None,
        token: Optional[str] = None,
        token_file: Optional[_PathLike] = None,
        tls: bool = False,
        ca_file: Optional[_PathLike] = None,
        cert_file: Optional[_PathLike] = None,
        key_file: Optional[_PathLike] = None,
        timeout: Optional[float] = DEFAULT_TIMEOUT,
        *,
        max_attempts: int = 4,
        initial_backoff: float = 0.1,
        max_backoff: float = 2.0,
        wait_for_ready: bool = False,
        channel_options: Sequence[Tuple[str, Any]] = (),
    ) -> None:
        """Opens a channel to ``target`` (``host:port``, ``http://host:port`` or ``https://host:port``;
        default ``$SECRETSBROKER_ADDRESS``).

        Raises:
            ValueError: for contradictory or incomplete options (both token and token_file, a
                certificate without its key, ``http://`` with TLS options, max_attempts < 1), or no
                target and no ``$SECRETSBROKER_ADDRESS``.
            OSError: when ``ca_file``, ``cert_file`` or ``key_file`` cannot be read.
        """
        config = ClientConfig.resolve(
            target, token, token_file, tls, ca_file, cert_file, key_file, timeout,
            max_attempts, initial_backoff, max_backoff, wait_for_ready, channel_options,
        )
        self._config = config
        self._tokens = config.tokens
        self._timeout = config.timeout
        self._wait_for_ready = config.wait_for_ready
        self.target = config.address
        credentials = config.channel_credentials()
        if credentials is not None:
            self._channel = grpc.secure_channel(config.address, credentials, options=config.options)
        else:
            self._channel = grpc.insecure_channel(config.address, options=config.options)
        self._stub = pb_grpc.SecretsBrokerStub(self._channel)
        self._crypto_stub = crypto_grpc.CryptoStub(self._channel)
        self._streams_lock = threading.Lock()
        self._leases: "weakref.WeakSet[Lease]" = weakref.WeakSet()
        self._watches: "weakref.WeakSet[SecretWatch]" = weakref.WeakSet()

    # -- lifecycle ---------------------------------------------------------------------------

    def close(self) -> None:
        """Closes the leases (revoking them) and watches this client opened, then the channel; calls in
        flight are cancelled. Safe to call twice."""
        with self._streams_lock:
            leases, watches = list(self._leases), list(self._watches)
        for lease in leases:
            lease.close()
        for watch in watches:
            watch.close()
        self._channel.close()

    def __enter__(self) -> "Client":
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Client(target={self.target!r})"

    # -- reads -------------------------------------------------------------------------------

    def get_secret(
        self,
        path: str,
        version: Union[str, int, None] = None,
        stage: Optional[str] = None,
        *,
        max_age: Optional[float] = None,
        bypass_cache: bool = False,
        timeout: Optional[float] = None,
    ) -> Secret:
        """Reads one secret: the latest version, or the given ``version`` or ``stage``.

        Args:
            path: logical path, for example ``kv/teams/alpha/db``.
            version: a version id as the backend names it (a number on local and KV mounts).
            stage: a staging label such as ``AWSCURRENT`` (aws-sm mounts only).
            max_age: seconds (positive); a cached value older than this is not accepted (the broker reads the backend).
            bypass_cache: read from the backend, whatever the cache holds.
            timeout: seconds for this call instead of the client's timeout.

        Raises:
            NotFound: no such mount, secret or version.
            InvalidArgument: malformed path or version.
            FailedPrecondition: a stage on a mount without stages.
            Unauthenticated, PermissionDenied, Unavailable, DeadlineExceeded: see :mod:`secretsbroker.errors`.
        """
        request = rq.get_secret(path, version, stage, max_age, bypass_cache)
        return rq.secret(self._call(self._stub.GetSecret, request, timeout, path))

    def rotate_secret(self, path: str, *, timeout: Optional[float] = None) -> Rotation:
        """Rotates ``path`` now with its configured strategy (needs the ``rotate`` capability) and returns the new
        current version once it is current. Concurrent calls for one path share one rotation.

        Raises:
            FailedPrecondition: no rotation strategy is configured for the path.
            PermissionDenied, Unavailable, DeadlineExceeded: see :mod:`secretsbroker.errors`.
        """
        return rq.rotation(self._call(self._stub.RotateSecret, rq.rotate_secret(path), timeout, path))

    def batch_get(self, paths: Iterable[str], *, timeout: Optional[float] = None) -> List[BatchResult]:
        """Reads the latest version of several secrets in one call.

        Returns one :class:`BatchResult` per requested path, in request order; each holds the secret
        or its own error (for example :class:`NotFound`), so one missing secret does not fail the batch.
        An empty ``paths`` returns an empty list without calling the broker. The broker accepts at most
        its configured maximum of paths per call (default 100) and answers InvalidArgument beyond it.

        Raises:
            TypeError: ``paths`` is a single string.
            SecretsBrokerError: when the whole call fails (Unauthenticated, InvalidArgument, ...).
        """
        request = rq.batch_get(paths)
        if request is None:
            return []
        return rq.batch_results(self._call(self._stub.BatchGetSecrets, request, timeout, None))

    def list_page(
        self,
        prefix: str,
        page_size: Optional[int] = None,
        page_token: str = "",
        *,
        timeout: Optional[float] = None,
    ) -> ListPage:
        """Reads one page of the listing beneath ``prefix``; pass ``next_page_token`` back for the next.

        ``page_size`` is 1 to 1000; None lets the broker choose (default 100).
        """
        return rq.page(self._call(self._stub.ListSecrets, rq.list_page(prefix, page_size, page_token), timeout, prefix))

    def list(self, prefix: str, page_size: Optional[int] = None, *, timeout: Optional[float] = None) -> Iterator[SecretListing]:
        """Iterates over every secret beneath ``prefix`` (at any depth), fetching pages as needed.

        Values are never included. The iterator is lazy: the first page is requested on the first
        ``next()``, and errors are raised there. ``timeout`` applies to each page's call.
        """
        token = ""
        while True:
            page = self.list_page(prefix, page_size, token, timeout=timeout)
            yield from page.secrets
            token = page.next_page_token
            if not token:
                return

    # -- writes ------------------------------------------------------------------------------

    def put_secret(
        self,
        path: str,
        data: Optional[Mapping[str, str]] = None,
        *,
        binary: Optional[bytes] = None,
        expected_version: Union[str, int, None] = None,
        timeout: Optional[float] = None,
    ) -> WrittenSecret:
        """Writes a new version of a secret (PutSecret): the fields ``data``, or the bytes ``binary``.

        Needs the ``write`` capability on ``path``. ``expected_version`` makes the write check-and-set: the
        version that must be current (as :attr:`Secret.version` names it), or ``""`` to write only if the
        secret does not exist yet. Every replica of the broker serves the new version once this returns.
        The call is not retried automatically (a retry could write twice).

        Raises:
            FailedPrecondition: ``expected_version`` is not current (the message names the current one), or
                the mount cannot be written (a read-only local mount, bytes on a vault-kv mount).
            InvalidArgument: malformed path, empty or oversized value.
            NotFound: no such mount (or, on aws-sm, no such secret: the broker does not create AWS secrets).
            ValueError, TypeError: neither or both of ``data`` and ``binary``, or values that are not strings.
            Unauthenticated, PermissionDenied, Unavailable, DeadlineExceeded: see :mod:`secretsbroker.errors`.
        """
        request = rq.put_secret(path, data, binary, expected_version)
        return rq.written(self._call(self._stub.PutSecret, request, timeout, path))

    # -- leases and watches --------------------------------------------------------------------

    def issue_credentials(self, path: str, *, timeout: Optional[float] = None) -> IssuedLease:
        """Issues dynamic credentials for a role of a ``vault-dynamic`` mount, without keeping the lease alive.

        A lease that is never attached to a KeepAlive stream lives until its TTL runs out; most callers
        want :meth:`lease` instead. Needs the ``issue`` capability on ``path``.

        Raises:
            FailedPrecondition: ``path`` is not on a ``vault-dynamic`` mount.
            NotFound, PermissionDenied, Unauthenticated, Unavailable, ...: see :mod:`secretsbroker.errors`.
        """
        return rq.issued(self._call(self._stub.IssueCredentials, rq.issue_credentials(path), timeout, path))

    def revoke_lease(self, lease_id: str, *, timeout: Optional[float] = None) -> None:
        """Revokes a lease now (RevokeLease). Needs the ``revoke`` capability on the lease's role path.

        Raises:
            NotFound: the broker does not know the lease (it expired, was revoked, or is another caller's).
        """
        self._call(self._stub.RevokeLease, rq.revoke_lease(lease_id), timeout, None)

    def lease(
        self,
        path: str,
        on_rotate: Optional[RotateCallback] = None,
        *,
        timeout: Optional[float] = None,
        initial_backoff: float = 0.2,
        max_backoff: float = 10.0,
    ) -> Lease:
        """Issues dynamic credentials for ``path`` and keeps their lease alive until closed.

        Example::

            with client.lease("db/readonly", on_rotate=lambda lease: pool.reconnect(lease.credentials)) as lease:
                pool = connect(**lease.credentials)
                train(pool)
            # leaving the block revoked the lease

        The credentials are issued before this returns (so a refused issue raises here); a daemon thread
        then holds a KeepAlive stream with the lease attached, reconnecting with exponential backoff
        (``initial_backoff`` doubling up to ``max_backoff`` seconds, jittered) and attaching again if the
        stream breaks. ``on_rotate(lease)`` runs on that thread after each rotation, when
        ``lease.credentials`` already holds the new credentials; keep it short, and note that the old
        credentials stay valid only for the broker's rotation overlap. See :class:`~secretsbroker.Lease`.

        Needs the ``issue``, ``renew`` and ``revoke`` capabilities on ``path``. Returns once the broker
        answered the attach (or after ``timeout``, when it has not yet: the keeper goes on trying); a
        refused attach (PermissionDenied without ``renew``) revokes the credentials and raises here.
        ``timeout`` applies to the IssueCredentials and RevokeLease calls and to that wait (default: the client's).

        Raises:
            FailedPrecondition: ``path`` is not on a ``vault-dynamic`` mount.
            NotFound, PermissionDenied, Unauthenticated, Unavailable, ...: see :mod:`secretsbroker.errors`.
        """
        issued = self.issue_credentials(path, timeout=timeout)
        lease = Lease(self, issued, on_rotate, initial_backoff=initial_backoff, max_backoff=max_backoff, revoke_timeout=timeout)
        with self._streams_lock:
            self._leases.add(lease)
        try:
            # A lease the broker will not keep alive (no `renew` grant) fails here, not silently later.
            lease.wait_attached(timeout if timeout is not None else self._timeout)
        except BaseException:
            lease.close()
            raise
        return lease

    def watch(
        self,
        paths: Optional[Iterable[str]] = None,
        prefixes: Optional[Iterable[str]] = None,
        *,
        timeout: Optional[float] = None,
        initial_backoff: float = 0.2,
        max_backoff: float = 10.0,
    ) -> SecretWatch:
        """Watches static secrets for new versions; returns an iterator of :class:`SecretEvent`.

        Example::

            with client.watch(paths=["kv/teams/ml/db"], prefixes=["kv/teams/ml/features"]) as watch:
                for event in watch:
                    config = client.get_secret(event.path)   # already the new version

        Returns once the broker has the watch in place (changes from then on produce events); ``timeout``
        bounds that wait (default: the client's timeout), not the watch, which stays open until closed.
        See :class:`~secretsbroker.SecretWatch`. Needs the ``watch`` capability on every path and prefix.

        Raises:
            ValueError: neither ``paths`` nor ``prefixes`` given.
            TypeError: ``paths`` or ``prefixes`` is a single string.
            InvalidArgument: a malformed path, or more targets than the broker accepts (default 100).
            PermissionDenied, NotFound, Unauthenticated, Unavailable, DeadlineExceeded: see :mod:`secretsbroker.errors`.
        """
        request = rq.watch(paths, prefixes)

        def open_call() -> grpc.Future:
            # The token is read again for every (re)subscription, so a refreshed token file is picked up.
            return self._stub.WatchSecrets(request, metadata=self._metadata(), wait_for_ready=self._wait_for_ready)

        watch = SecretWatch(
            self, open_call, timeout if timeout is not None else self._timeout, initial_backoff=initial_backoff, max_backoff=max_backoff
        )
        with self._streams_lock:
            self._watches.add(watch)
        return watch

    def _forget_lease(self, lease: Lease) -> None:
        with self._streams_lock:
            self._leases.discard(lease)

    def _forget_watch(self, watch: SecretWatch) -> None:
        with self._streams_lock:
            self._watches.discard(watch)

    # -- plumbing ----------------------------------------------------------------------------

    def _metadata(self) -> List[Tuple[str, str]]:
        return self._tokens.metadata()

    def _call(self, method: Any, request: Any, timeout: Optional[float], path: Optional[str]) -> Any:
        try:
            return method(
                request,
                timeout=timeout if timeout is not None else self._timeout,
                metadata=self._metadata(),
                wait_for_ready=self._wait_for_ready,
            )
        except grpc.RpcError as error:
            raise from_rpc_error(error, path) from None
        except ValueError as error:
            # grpc raises ValueError when the channel is closed.
            if "closed" in str(error).lower():
                raise Cancelled("the client is closed", path=path) from error
            raise


