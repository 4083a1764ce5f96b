"""Exceptions raised by the SecretsBroker client, one class per gRPC status code.

Every failure of a call is a :class:`SecretsBrokerError`; catch a subclass to handle one status::

    try:
        secret = client.get_secret("team/ml/db")
    except secretsbroker.NotFound:
        ...

The broker's messages never contain secret values, so they are safe to log.
"""

from __future__ import annotations

from typing import Dict, Optional, Type

import grpc

__all__ = [
    "SecretsBrokerError",
    "InvalidArgument",
    "Unauthenticated",
    "PermissionDenied",
    "NotFound",
    "FailedPrecondition",
    "ResourceExhausted",
    "Unavailable",
    "DeadlineExceeded",
    "Cancelled",
    "Internal",
    "LeaseLost",
    "error_for_status",
]


class SecretsBrokerError(Exception):
    """Base class of every error the client raises.

    Attributes:
        code: the gRPC status code of the failure.
        message: the broker's (or gRPC's) explanation, without secret values.
        path: the logical path (or listing prefix) the failure is about, when the call named one.
            Not part of ``str(error)``.
    """

    #: The status this class stands for; the base class is used for codes without a subclass.
    status_code: grpc.StatusCode = grpc.StatusCode.UNKNOWN

    def __init__(self, message: str, *, code: Optional[grpc.StatusCode] = None, path: Optional[str] = None) -> None:
        self.code: grpc.StatusCode = code if code is not None else self.status_code
        self.message: str = message
        self.path: Optional[str] = path
        super().__init__(message)

    def __str__(self) -> str:
        # The path stays out of the text (as in the broker's own messages), so logging an error
        # does not log which secret was asked for; it is in ``self.path`` for the caller.
        return f"{self.code.name}: {self.message}"

    def __repr__(self) -> str:
        return f"{type(self).__name__}(code={self.code.name}, message={self.message!r}, path={self.path!r})"


class InvalidArgument(SecretsBrokerError):
    """The request is malformed: a bad path (``a//b``), page token, version, or too many batch items."""

    status_code = grpc.StatusCode.INVALID_ARGUMENT


class Unauthenticated(SecretsBrokerError):
    """No credentials, or the broker rejected them (wrong or expired token)."""

    status_code = grpc.StatusCode.UNAUTHENTICATED


class PermissionDenied(SecretsBrokerError):
    """The caller is authenticated, but its policy does not grant the action on this path."""

    status_code = grpc.StatusCode.PERMISSION_DENIED


class NotFound(SecretsBrokerError):
    """No such mount, secret or version."""

    status_code = grpc.StatusCode.NOT_FOUND


class FailedPrecondition(SecretsBrokerError):
    """The request does not fit the mount, for example a stage on a mount without stages."""

    status_code = grpc.StatusCode.FAILED_PRECONDITION


class ResourceExhausted(SecretsBrokerError):
    """Rate limited, or the request is larger than the broker accepts."""

    status_code = grpc.StatusCode.RESOURCE_EXHAUSTED


class Unavailable(SecretsBrokerError):
    """The broker (or its backend) could not be reached and nothing safe could be served.

    The client has already retried with backoff before raising this.
    """

    status_code = grpc.StatusCode.UNAVAILABLE


class DeadlineExceeded(SecretsBrokerError):
    """The call's deadline (the client's ``timeout``) passed before the broker answered."""

    status_code = grpc.StatusCode.DEADLINE_EXCEEDED


class Cancelled(SecretsBrokerError):
    """The call was cancelled."""

    status_code = grpc.StatusCode.CANCELLED


class Internal(SecretsBrokerError):
    """The broker hit a bug; its log has the details (the message carries a trace id)."""

    status_code = grpc.StatusCode.INTERNAL


class LeaseLost(FailedPrecondition):
    """A kept lease can no longer be used: its credentials do not work any more (or may not).

    Raised by :attr:`secretsbroker.Lease.credentials` (and the other accessors of the current credentials)
    once the broker reported the lease REVOKED or EXPIRED, answered that it no longer knows the lease,
    or once the lease was closed (its ``with`` block ended). Issue a new lease to go on.

    Attributes:
        reason: ``"revoked"``, ``"expired"``, ``"not_found"``, ``"closed"`` or ``"client_closed"``.
    """

    def __init__(self, message: str, *, reason: str, path: Optional[str] = None) -> None:
        super().__init__(message, path=path)
        self.reason: str = reason


_BY_CODE: Dict[grpc.StatusCode, Type[SecretsBrokerError]] = {
    cls.status_code: cls
    for cls in (
        InvalidArgument,
        Unauthenticated,
        PermissionDenied,
        NotFound,
        FailedPrecondition,
        ResourceExhausted,
        Unavailable,
        DeadlineExceeded,
        Cancelled,
        Internal,
    )
}

_BY_NUMBER: Dict[int, grpc.StatusCode] = {code.value[0]: code for code in grpc.StatusCode}


def status_code_from_number(number: int) -> grpc.StatusCode:
    """Returns the :class:`grpc.StatusCode` for a numeric code (as in a batch item's error); UNKNOWN if unknown."""
    return _BY_NUMBER.get(number, grpc.StatusCode.UNKNOWN)


def error_for_status(code: grpc.StatusCode, message: str, path: Optional[str] = None) -> SecretsBrokerError:
    """Builds the exception matching ``code`` (the base class for codes without a subclass)."""
    cls = _BY_CODE.get(code, SecretsBrokerError)
    return cls(message, code=code, path=path)


def from_rpc_error(error: grpc.RpcError, path: Optional[str] = None) -> SecretsBrokerError:
    """Converts a failed gRPC call into the matching :class:`SecretsBrokerError`."""
    code = error.code() if hasattr(error, "code") else grpc.StatusCode.UNKNOWN
    details = error.details() if hasattr(error, "details") else None
    if code is None:
        code = grpc.StatusCode.UNKNOWN
    return error_for_status(code, details or code.name.lower().replace("_", " "), path)
