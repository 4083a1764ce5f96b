"""The SecretsBroker client: a thin, typed layer over the generated gRPC stubs."""

from __future__ import annotations

import json
import os
import threading
import weakref
from typing import Any, Iterable, Iterator, List, Optional, Sequence, Tuple, Union

import grpc

from . import __version__
from .errors import Cancelled, Unauthenticated, from_rpc_error
from .lease import Lease, RotateCallback
from .models import BatchResult, IssuedLease, ListPage, Secret, SecretListing
from .watch import SecretWatch
from .v1 import broker_pb2 as pb
from .v1 import broker_pb2_grpc as pb_grpc

__all__ = ["Client", "TOKEN_ENV", "TOKEN_FILE_ENV", "DEFAULT_TIMEOUT"]

#: Environment variable holding a bearer token, used when neither ``token`` nor ``token_file`` is given.
TOKEN_ENV = "SECRETSBROKER_TOKEN"
#: Environment variable naming a token file, used when neither ``token`` nor ``token_file`` is given.
TOKEN_FILE_ENV = "SECRETSBROKER_TOKEN_FILE"
#: Seconds a call may take, retries included, unless the client or the call sets another timeout.
DEFAULT_TIMEOUT = 10.0

_SERVICE = "secretsbroker.v1.SecretsBroker"
_PathLike = Union[str, "os.PathLike[str]"]


class Client:
    """A connection to a SecretsBroker.

    Example::

        with Client("broker.example.internal:5151", tls=True, token_file="/var/run/secrets/tokens/broker") as client:
            db = client.get_secret("kv/teams/alpha/db")
            connect(user=db["username"], password=db["password"])

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

    Leases (:meth:`lease`) and watches (:meth:`watch`) are long-lived streams without a deadline;
    closing the client closes (and revokes) the leases and watches it opened.

    The client is thread-safe and holds one channel; close it (or use ``with``) when done.
    """

    def __init__(
        self,
        target: str,
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
        """Opens a channel to ``target`` (``host:port``, ``http://host:port`` or ``https://host:port``).

        Raises:
            ValueError: for contradictory or incomplete options (both token and token_file, a
                certificate without its key, ``http://`` with TLS options, max_attempts < 1).
            OSError: when ``ca_file``, ``cert_file`` or ``key_file`` cannot be read.
        """
        if token is not None and token_file is not None:
            raise ValueError("give token or token_file, not both")
        if (cert_file is None) != (key_file is None):
            raise ValueError("cert_file and key_file go together (mTLS needs both)")
        if not 1 <= max_attempts <= 5:
            raise ValueError("max_attempts must be between 1 (no retries) and 5 (gRPC's limit)")
        if timeout is not None and timeout <= 0:
            raise ValueError("timeout must be positive, or None for no deadline")

        address, scheme_tls = _split_target(target)
        use_tls = tls or scheme_tls is True or any(f is not None for f in (ca_file, cert_file, key_file))
        if scheme_tls is False and use_tls:
            raise ValueError("the target says http:// but TLS options were given; use https:// or drop them")

        if token is None and token_file is None:
            env_file = os.environ.get(TOKEN_FILE_ENV)
            if env_file:
                token_file = env_file
            else:
                token = os.environ.get(TOKEN_ENV) or None
        self._token = token.strip() if token is not None else None
        self._token_file = os.fspath(token_file) if token_file is not None else None
        self._timeout = timeout
        self._wait_for_ready = wait_for_ready

        options = dict(channel_options)
        options.setdefault("grpc.primary_user_agent", f"secretsbroker-python/{__version__}")
        options.setdefault("grpc.enable_retries", 1)
        options.setdefault("grpc.service_config", _retry_service_config(max_attempts, initial_backoff, max_backoff))
        option_list = list(options.items())

        self.target = address
        if use_tls:
            credentials = grpc.ssl_channel_credentials(
                root_certificates=_read_bytes(ca_file),
                private_key=_read_bytes(key_file),
                certificate_chain=_read_bytes(cert_file),
            )
            self._channel = grpc.secure_channel(address, credentials, options=option_list)
        else:
            self._channel = grpc.insecure_channel(address, options=option_list)
        self._stub = pb_grpc.SecretsBrokerStub(self._channel)
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
        if version is not None and stage is not None:
            raise ValueError("select a version or a stage, not both")
        request = pb.GetSecretRequest(path=path)
        if version is not None:
            request.version = str(version)
        elif stage is not None:
            request.stage = stage
        if max_age is not None:
            if max_age <= 0:
                raise ValueError("max_age must be positive (seconds); use bypass_cache=True to skip the cache")
            request.max_age.FromNanoseconds(max(1, int(max_age * 1e9)))
        request.bypass_cache = bypass_cache
        response = self._call(self._stub.GetSecret, request, timeout, path)
        return Secret._from_proto(response.secret)

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
        if isinstance(paths, (str, bytes)):
            raise TypeError("batch_get takes a list of paths, not a single path; use get_secret for one")
        path_list = list(paths)
        if not path_list:
            return []
        response = self._call(self._stub.BatchGetSecrets, pb.BatchGetSecretsRequest(paths=path_list), timeout, None)
        return [BatchResult._from_proto(result) for result in response.results]

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
        request = pb.ListSecretsRequest(prefix=prefix, page_size=page_size or 0, page_token=page_token)
        response = self._call(self._stub.ListSecrets, request, timeout, prefix)
        return ListPage(
            secrets=[SecretListing._from_proto(entry) for entry in response.secrets],
            next_page_token=response.next_page_token,
        )

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

    # -- leases and watches --------------------------------------------------------------------

    def issue_credentials(self, path: str, *, timeout: Optional[float] = None) -> IssuedLease:
        """Issues dynamic credentials for a role of a ``vault-dynamic`` mount, without keeping the lease alive.

        A lease that is never attached to a KeepAlive stream lives until its TTL runs out; most callers
        want :meth:`lease` instead. Needs the ``issue`` capability on ``path``.

        Raises:
            FailedPrecondition: ``path`` is not on a ``vault-dynamic`` mount.
            NotFound, PermissionDenied, Unauthenticated, Unavailable, ...: see :mod:`secretsbroker.errors`.
        """
        lease = self._call(self._stub.IssueCredentials, pb.IssueCredentialsRequest(path=path), timeout, path)
        return IssuedLease._from_proto(lease)

    def revoke_lease(self, lease_id: str, *, timeout: Optional[float] = None) -> None:
        """Revokes a lease now (RevokeLease). Needs the ``revoke`` capability on the lease's role path.

        Raises:
            NotFound: the broker does not know the lease (it expired, was revoked, or is another caller's).
        """
        self._call(self._stub.RevokeLease, pb.RevokeLeaseRequest(lease_id=lease_id), timeout, None)

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

        Needs the ``issue``, ``renew`` and ``revoke`` capabilities on ``path``. ``timeout`` applies to
        the IssueCredentials and RevokeLease calls (default: the client's).

        Raises:
            FailedPrecondition: ``path`` is not on a ``vault-dynamic`` mount.
            NotFound, PermissionDenied, Unauthenticated, Unavailable, ...: see :mod:`secretsbroker.errors`.
        """
        issued = self.issue_credentials(path, timeout=timeout)
        try:
            lease = Lease(
                self,
                issued,
                on_rotate,
                initial_backoff=initial_backoff,
                max_backoff=max_backoff,
                revoke_timeout=timeout,
            )
        except BaseException:
            try:
                self.revoke_lease(issued.lease_id, timeout=timeout)
            except Exception:
                pass
            raise
        with self._streams_lock:
            self._leases.add(lease)
        return lease

    def watch(
        self,
        paths: Optional[Iterable[str]] = None,
        prefixes: Optional[Iterable[str]] = None,
        *,
        timeout: Optional[float] = None,
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
        if isinstance(paths, (str, bytes)) or isinstance(prefixes, (str, bytes)):
            raise TypeError("watch takes lists: watch(paths=[...], prefixes=[...])")
        path_list, prefix_list = list(paths or []), list(prefixes or [])
        if not path_list and not prefix_list:
            raise ValueError("watch needs at least one path or prefix")
        request = pb.WatchSecretsRequest(paths=path_list, prefixes=prefix_list)
        try:
            call = self._stub.WatchSecrets(request, metadata=self._metadata(), wait_for_ready=self._wait_for_ready)
        except ValueError as error:
            if "closed" in str(error).lower():
                raise Cancelled("the client is closed") from error
            raise
        watch = SecretWatch(self, call, timeout if timeout is not None else self._timeout)
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
        token = self._current_token()
        return [("authorization", f"Bearer {token}")] if token else []

    def _current_token(self) -> Optional[str]:
        if self._token_file is None:
            return self._token
        try:
            with open(self._token_file, encoding="utf-8") as handle:
                token = handle.read().strip()
        except OSError as error:
            raise Unauthenticated(f"cannot read the token file {self._token_file!r}: {error.strerror or error}") from error
        if not token:
            raise Unauthenticated(f"the token file {self._token_file!r} is empty")
        return token

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


def _split_target(target: str) -> Tuple[str, Optional[bool]]:
    """``https://h:p`` -> (``h:p``, True); ``http://h:p`` -> (``h:p``, False); ``h:p`` -> (``h:p``, None)."""
    for scheme, secure in (("https://", True), ("http://", False)):
        if target.lower().startswith(scheme):
            return target[len(scheme):].rstrip("/"), secure
    return target, None


def _read_bytes(path: Optional[_PathLike]) -> Optional[bytes]:
    if path is None:
        return None
    with open(path, "rb") as handle:
        return handle.read()


def _retry_service_config(max_attempts: int, initial_backoff: float, max_backoff: float) -> str:
    method_config: dict = {"name": [{"service": _SERVICE}]}
    if max_attempts > 1:
        method_config["retryPolicy"] = {
            "maxAttempts": max_attempts,
            "initialBackoff": f"{initial_backoff:g}s",
            "maxBackoff": f"{max_backoff:g}s",
            "backoffMultiplier": 2,
            "retryableStatusCodes": ["UNAVAILABLE"],
        }
    return json.dumps({"methodConfig": [method_config]})
