"""Plain Python values returned by the client (no protobuf types leak out)."""

from __future__ import annotations

import datetime as _dt
from dataclasses import dataclass, field
from typing import List, Mapping, Optional, Tuple

from .errors import SecretsBrokerError, error_for_status, status_code_from_number
from .v1 import broker_pb2 as pb

__all__ = ["Secret", "ServingInfo", "SecretListing", "BatchResult", "ListPage"]

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


@dataclass(frozen=True)
class Secret:
    """One version of a secret.

    Key/value secrets have ``data`` (``binary`` is empty); binary secrets (certificates, keystores)
    have ``binary`` (``data`` is empty). ``repr()`` never shows the values, so a Secret can be logged.

    Attributes:
        path: the logical path that was requested.
        version: the backend's id of the returned version (a number for local and KV mounts).
        created_time: when this version was created (timezone-aware UTC), or None if unknown.
        data: the fields of a key/value secret.
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

    @property
    def is_binary(self) -> bool:
        """True for a binary secret (its value is in ``binary``)."""
        return not self.data and bool(self.binary)

    def __getitem__(self, key: str) -> str:
        """``secret["password"]`` is ``secret.data["password"]``."""
        return self.data[key]

    def get(self, key: str, default: Optional[str] = None) -> Optional[str]:
        """A field of a key/value secret, or ``default`` when it has no such field."""
        return self.data.get(key, default)

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


def _timestamp(message: object, name: str) -> Optional[_dt.datetime]:
    if not message.HasField(name):  # type: ignore[attr-defined]
        return None
    stamp = getattr(message, name)
    return _dt.datetime.fromtimestamp(stamp.seconds, tz=_dt.timezone.utc) + _dt.timedelta(microseconds=stamp.nanos // 1000)
