"""Plain Python values returned by the client (no protobuf types leak out)."""

from __future__ import annotations

import collections.abc
import datetime as _dt
import enum
import types
from dataclasses import dataclass, field
from typing import Iterator, List, Mapping, Optional, Tuple

from .errors import SecretsBrokerError, error_for_status, status_code_from_number
from .v1 import broker_pb2 as pb

__all__ = [
    "Secret",
    "ServingInfo",
    "SecretListing",
    "BatchResult",
    "ListPage",
    "IssuedLease",
    "LeaseEvent",
    "LeaseEventType",
    "SecretEvent",
    "WrittenSecret",
]

_SOURCES = {
    pb.VALUE_SOURCE_UNSPECIFIED: "unspecified",
    pb.VALUE_SOURCE_BACKEND: "backend",
    pb.VALUE_SOURCE_L1: "l1",
    pb.VALUE_SOURCE_L2: "l2",
}


@dataclass(frozen=True)
class ServingInfo:
    """Where and how the broker obtained a value, to reason about freshness.

    Attributes:
        mount: the mount prefix that served the path, for example ``kv``.
        backend_type: ``local``, ``vault-kv``, ``aws-sm`` ...
        source: which layer answered: ``backend``, ``l1`` (replica cache), ``l2`` (shared cache).
        age: how long ago the broker read the value from the backend (zero for a fresh read).
        stale: True when the backend was unreachable and a cached value was served instead.
    """

    mount: str
    backend_type: str
    source: str
    age: _dt.timedelta
    stale: bool

    @classmethod
    def _from_proto(cls, message: pb.ServingMetadata) -> "ServingInfo":
        return cls(
            mount=message.mount,
            backend_type=message.backend_type,
            source=_SOURCES.get(message.source, "unspecified"),
            age=message.age.ToTimedelta(),
            stale=message.stale,
        )


@dataclass(frozen=True, eq=False)
class Secret(collections.abc.Mapping):  # type: ignore[type-arg]
    """One version of a secret; a read-only mapping of its fields.

    Key/value secrets have ``data`` (``binary`` is empty); binary secrets (certificates, keystores)
    have ``binary`` (``data`` is empty). A Secret is a read-only :class:`collections.abc.Mapping` of its
    fields: ``secret["password"]``, ``"password" in secret``, ``for name in secret``, ``secret.keys()``,
    ``secret.get("port", "5432")``, ``dict(secret)``, ``len(secret)``, ``**secret``. ``repr()`` never shows
    the values, so a Secret can be logged; a ``dict(secret)`` can not.

    Attributes:
        path: the logical path that was requested.
        version: the backend's id of the returned version (a number for local and KV mounts).
        created_time: when this version was created (timezone-aware UTC), or None if unknown.
        data: the fields of a key/value secret (read-only).
        binary: the bytes of a binary secret.
        stages: staging labels of this version (aws-sm: AWSCURRENT, AWSPREVIOUS ...).
        serving: where the broker got the value.
    """

    path: str
    version: str
    created_time: Optional[_dt.datetime]
    data: Mapping[str, str] = field(repr=False)
    binary: bytes = field(repr=False)
    stages: Tuple[str, ...]
    serving: Optional[ServingInfo]

    def __post_init__(self) -> None:
        if not isinstance(self.data, types.MappingProxyType):
            object.__setattr__(self, "data", types.MappingProxyType(dict(self.data)))

    @property
    def is_binary(self) -> bool:
        """True for a binary secret (its value is in ``binary``)."""
        return not self.data and bool(self.binary)

    def __getitem__(self, key: str) -> str:
        """``secret["password"]`` is ``secret.data["password"]``."""
        return self.data[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self.data)

    def __len__(self) -> int:
        return len(self.data)

    def __eq__(self, other: object) -> bool:
        # Two reads of the same version are equal; a plain mapping equals a Secret with the same fields
        # (Mapping's own rule), as dict(secret) == secret suggests.
        if isinstance(other, Secret):
            return (self.path, self.version, self.created_time, dict(self.data), self.binary, self.stages) == (
                other.path, other.version, other.created_time, dict(other.data), other.binary, other.stages)
        if isinstance(other, collections.abc.Mapping):
            return dict(self.data) == dict(other)
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]  # mutable-looking mapping semantics, as dict

    @classmethod
    def _from_proto(cls, message: pb.Secret) -> "Secret":
        return cls(
            path=message.path,
            version=message.version,
            created_time=_timestamp(message, "created_time"),
            data=dict(message.data),
            binary=bytes(message.binary_data),
            stages=tuple(message.stages),
            serving=ServingInfo._from_proto(message.serving) if message.HasField("serving") else None,
        )


@dataclass(frozen=True)
class SecretListing:
    """A secret's name and metadata from a listing (never its value).

    Attributes:
        path: the logical path of the secret.
        latest_version: the latest version id, or "" when the backend does not report it.
        updated_time: when the latest version was created (UTC), or None when not reported.
    """

    path: str
    latest_version: str
    updated_time: Optional[_dt.datetime]

    @classmethod
    def _from_proto(cls, message: pb.SecretListing) -> "SecretListing":
        return cls(path=message.path, latest_version=message.latest_version, updated_time=_timestamp(message, "updated_time"))


@dataclass(frozen=True)
class ListPage:
    """One page of a listing; ``next_page_token`` is "" on the last page."""

    secrets: List[SecretListing]
    next_page_token: str


@dataclass(frozen=True)
class BatchResult:
    """The outcome for one path of :meth:`Client.batch_get`: exactly one of ``secret`` and ``error`` is set.

    Attributes:
        path: the path as requested.
        secret: the secret, when it was read.
        error: why it could not be read (a :class:`SecretsBrokerError` subclass such as NotFound).
    """

    path: str
    secret: Optional[Secret] = None
    error: Optional[SecretsBrokerError] = None

    @property
    def ok(self) -> bool:
        """True when the secret was read."""
        return self.secret is not None

    def unwrap(self) -> Secret:
        """Returns the secret, or raises this item's error."""
        if self.secret is not None:
            return self.secret
        raise self.error if self.error is not None else SecretsBrokerError("the broker returned an empty batch result", path=self.path)

    @classmethod
    def _from_proto(cls, message: pb.BatchGetSecretsResult) -> "BatchResult":
        which = message.WhichOneof("result")
        if which == "secret":
            return cls(path=message.path, secret=Secret._from_proto(message.secret))
        if which == "error":
            code = status_code_from_number(message.error.code)
            return cls(path=message.path, error=error_for_status(code, message.error.message, message.path))
        return cls(path=message.path, error=SecretsBrokerError("the broker returned neither a secret nor an error", path=message.path))


@dataclass(frozen=True)
class IssuedLease:
    """Dynamic credentials and the lease that keeps them valid, as the broker issued them.

    ``repr()`` shows neither ``lease_id`` nor ``credentials``: the lease id allows renewing and revoking
    the credentials, so it is treated as a secret too.

    Attributes:
        lease_id: the broker's lease id (pass it to KeepAlive and RevokeLease).
        path: the role path the lease was issued for, for example ``db/readonly``.
        credentials: the credential fields, for example ``username`` and ``password``.
        ttl: how long the credentials are valid from issue (or from the last renewal).
        renewable: whether the backend allows renewing the lease (if not, it is rotated before expiry).
        expires_at: when the credentials expire unless renewed (timezone-aware UTC), or None if unknown.
    """

    lease_id: str = field(repr=False)
    path: str
    credentials: Mapping[str, str] = field(repr=False)
    ttl: _dt.timedelta
    renewable: bool
    expires_at: Optional[_dt.datetime]

    @classmethod
    def _from_proto(cls, message: pb.Lease) -> "IssuedLease":
        return cls(
            lease_id=message.lease_id,
            path=message.path,
            credentials=dict(message.credentials),
            ttl=message.ttl.ToTimedelta(),
            renewable=message.renewable,
            expires_at=_timestamp(message, "expires_at"),
        )


class LeaseEventType(str, enum.Enum):
    """What happened to a lease. All but DISCONNECTED come from the broker's KeepAlive stream."""

    #: The lease was renewed; ``expires_at`` is the new expiry.
    RENEWED = "renewed"
    #: Fresh credentials were issued under a new lease (``rotated_to``), which replaces the old one.
    #: The old credentials keep working for the broker's rotation overlap, then the old lease is revoked.
    ROTATED = "rotated"
    #: The lease was revoked (RevokeLease, or the old lease after a rotation). Its credentials no longer work.
    REVOKED = "revoked"
    #: The lease expired before it could be renewed or rotated.
    EXPIRED = "expired"
    #: Something failed for this lease only (``error`` says what); the broker goes on trying while the lease lives.
    ERROR = "error"
    #: The lease was attached to the KeepAlive stream (after the first connect and after each reconnect).
    ATTACHED = "attached"
    #: Client-side: the KeepAlive stream broke (``error`` says why); the keeper reconnects with backoff
    #: and attaches the lease again. ``lease_id`` is the current lease.
    DISCONNECTED = "disconnected"


_LEASE_EVENT_TYPES = {
    pb.LEASE_EVENT_TYPE_RENEWED: LeaseEventType.RENEWED,
    pb.LEASE_EVENT_TYPE_ROTATED: LeaseEventType.ROTATED,
    pb.LEASE_EVENT_TYPE_REVOKED: LeaseEventType.REVOKED,
    pb.LEASE_EVENT_TYPE_EXPIRED: LeaseEventType.EXPIRED,
    pb.LEASE_EVENT_TYPE_ERROR: LeaseEventType.ERROR,
    pb.LEASE_EVENT_TYPE_ATTACHED: LeaseEventType.ATTACHED,
}


@dataclass(frozen=True)
class LeaseEvent:
    """One event of a kept lease (see :meth:`secretsbroker.Lease.events`).

    Attributes:
        type: what happened.
        lease_id: the lease the event is about (for ROTATED: the old lease). Not shown by ``repr()``.
        expires_at: the lease's expiry after the event (RENEWED, ATTACHED; for ROTATED the new lease's), or None.
        time: when the broker produced the event (for DISCONNECTED: when the client noticed), or None.
        rotated_to: ROTATED only: the new lease with its credentials.
        error: ERROR and DISCONNECTED only: what failed, as the matching exception (never holds a secret).
    """

    type: LeaseEventType
    lease_id: str = field(repr=False)
    expires_at: Optional[_dt.datetime] = None
    time: Optional[_dt.datetime] = None
    rotated_to: Optional[IssuedLease] = None
    error: Optional[SecretsBrokerError] = None

    @classmethod
    def _from_proto(cls, message: pb.LeaseEvent, path: Optional[str] = None) -> Optional["LeaseEvent"]:
        """None for an event type this client does not know (a newer broker)."""
        kind = _LEASE_EVENT_TYPES.get(message.type)
        if kind is None:
            return None
        error = None
        if message.HasField("error"):
            error = error_for_status(status_code_from_number(message.error.code), message.error.message, path)
        return cls(
            type=kind,
            lease_id=message.lease_id,
            expires_at=_timestamp(message, "expires_at"),
            time=_timestamp(message, "time"),
            rotated_to=IssuedLease._from_proto(message.rotated_to) if message.HasField("rotated_to") else None,
            error=error,
        )


@dataclass(frozen=True)
class SecretEvent:
    """A watched secret got a new version (see :meth:`secretsbroker.Client.watch`).

    By the time the event arrives the broker has dropped its cached value, so
    ``client.get_secret(event.path)`` right after returns the new version.

    Attributes:
        path: the logical path of the secret.
        version: the new current version id.
        time: when the broker detected the change (UTC), or None if not reported.
    """

    path: str
    version: str
    time: Optional[_dt.datetime]

    @classmethod
    def _from_proto(cls, message: pb.SecretEvent) -> "SecretEvent":
        return cls(path=message.path, version=message.version, time=_timestamp(message, "time"))


@dataclass(frozen=True)
class WrittenSecret:
    """The version :meth:`secretsbroker.Client.put_secret` created.

    Attributes:
        path: the logical path that was written.
        version: the new version's id (a number on local and KV mounts, an AWS VersionId on aws-sm).
        created_time: when the backend created it (UTC), or None if not reported.
    """

    path: str
    version: str
    created_time: Optional[_dt.datetime]

    @classmethod
    def _from_proto(cls, message: pb.PutSecretResponse) -> "WrittenSecret":
        return cls(path=message.path, version=message.version, created_time=_timestamp(message, "created_time"))


def _timestamp(message: object, name: str) -> Optional[_dt.datetime]:
    if not message.HasField(name):  # type: ignore[attr-defined]
        return None
    stamp = getattr(message, name)
    return _dt.datetime.fromtimestamp(stamp.seconds, tz=_dt.timezone.utc) + _dt.timedelta(microseconds=stamp.nanos // 1000)


@dataclass(frozen=True)
class Rotation:
    """What RotateSecret answered: the new current version, the one it replaced, and the strategy that rotated it."""

    path: str
    version: str
    previous_version: str
    strategy: str
    created_time: Optional[_dt.datetime]

    @classmethod
    def _from_proto(cls, response: "pb.RotateSecretResponse") -> "Rotation":
        created = response.created_time.ToDatetime(tzinfo=_dt.timezone.utc) if response.HasField("created_time") else None
        return cls(response.path, response.version, response.previous_version, response.strategy, created)
