"""Connection settings shared by the sync and the asyncio client: environment, TLS, token, retry policy."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from typing import Any, List, Optional, Sequence, Tuple, Union

import grpc

from . import __version__
from .errors import Unauthenticated

__all__ = [
    "ADDRESS_ENV",
    "TOKEN_ENV",
    "TOKEN_FILE_ENV",
    "CA_FILE_ENV",
    "DEFAULT_TIMEOUT",
    "ClientConfig",
    "TokenSource",
]

#: Environment variable with the broker's address (``host:port``, ``http://...`` or ``https://...``), used
#: when no ``target`` is given.
ADDRESS_ENV = "SECRETSBROKER_ADDRESS"
#: Environment variable holding a bearer token, used when neither ``token`` nor ``token_file`` is given.
TOKEN_ENV = "SECRETSBROKER_TOKEN"
#: Environment variable naming a token file, used when neither ``token`` nor ``token_file`` is given.
TOKEN_FILE_ENV = "SECRETSBROKER_TOKEN_FILE"
#: Environment variable naming a CA bundle for TLS to the broker, used when no TLS file is given.
CA_FILE_ENV = "SECRETSBROKER_CA_FILE"
#: Seconds a call may take, retries included, unless the client or the call sets another timeout.
DEFAULT_TIMEOUT = 10.0

SERVICE = "secretsbroker.v1.SecretsBroker"
PathLike = Union[str, "os.PathLike[str]"]


class TokenSource:
    """Where the bearer token comes from: a fixed token, or a file read again on every call (and every
    stream (re)connect), so rotated tokens such as Kubernetes projected service-account tokens are used
    without a restart."""

    def __init__(self, token: Optional[str], token_file: Optional[PathLike]) -> None:
        self.token = token.strip() if token is not None else None
        self.token_file = os.fspath(token_file) if token_file is not None else None

    def current(self) -> Optional[str]:
        if self.token_file is None:
            return self.token
        try:
            with open(self.token_file, encoding="utf-8") as handle:
                token = handle.read().strip()
        except OSError as error:
            raise Unauthenticated(f"cannot read the token file {self.token_file!r}: {error.strerror or error}") from error
        if not token:
            raise Unauthenticated(f"the token file {self.token_file!r} is empty")
        return token

    def metadata(self) -> List[Tuple[str, str]]:
        token = self.current()
        return [("authorization", f"Bearer {token}")] if token else []


@dataclass
class ClientConfig:
    """Validated options of a client, with the environment applied (see :class:`secretsbroker.Client`)."""

    address: str
    use_tls: bool
    ca_file: Optional[str]
    cert_file: Optional[PathLike]
    key_file: Optional[PathLike]
    tokens: TokenSource
    timeout: Optional[float]
    wait_for_ready: bool
    options: List[Tuple[str, Any]]

    @classmethod
    def resolve(
        cls,
        target: Optional[str],
        token: Optional[str],
        token_file: Optional[PathLike],
        tls: bool,
        ca_file: Optional[PathLike],
        cert_file: Optional[PathLike],
        key_file: Optional[PathLike],
        timeout: Optional[float],
        max_attempts: int,
        initial_backoff: float,
        max_backoff: float,
        wait_for_ready: bool,
        channel_options: Sequence[Tuple[str, Any]],
    ) -> "ClientConfig":
        if token is not None and token_file is not None:
            raise ValueError("give token or token_file, not both")
        if (cert_file is None) != (key_file is None):
            raise ValueError("cert_file and key_file go together (mTLS needs both)")
        if not 1 <= max_attempts <= 5:
            raise ValueError("max_attempts must be between 1 (no retries) and 5 (gRPC's limit)")
        if timeout is not None and timeout <= 0:
            raise ValueError("timeout must be positive, or None for no deadline")

        if target is None:
            target = os.environ.get(ADDRESS_ENV) or None
            if target is None:
                raise ValueError(f"no broker address: pass target (host:port) or set ${ADDRESS_ENV}")
        address, scheme_tls = _split_target(target)
        if ca_file is None and cert_file is None and os.environ.get(CA_FILE_ENV):
            ca_file = os.environ[CA_FILE_ENV]
            if scheme_tls is False:
                raise ValueError(f"the target says http:// but ${CA_FILE_ENV} names a CA file; use https:// or unset it")
        use_tls = tls or scheme_tls is True or any(f is not None for f in (ca_file, cert_file, key_file))
        if scheme_tls is False and use_tls:
            raise ValueError("the target says http:// but TLS options were given; use https:// or drop them")

        if token is None and token_file is None:
            env_file = os.environ.get(TOKEN_FILE_ENV)
            if env_file:
                token_file = env_file
            else:
                token = os.environ.get(TOKEN_ENV) or None

        options = dict(channel_options)
        options.setdefault("grpc.primary_user_agent", f"secretsbroker-python/{__version__}")
        options.setdefault("grpc.enable_retries", 1)
        options.setdefault("grpc.service_config", _retry_service_config(max_attempts, initial_backoff, max_backoff))
        return cls(
            address=address,
            use_tls=use_tls,
            ca_file=os.fspath(ca_file) if ca_file is not None else None,
            cert_file=cert_file,
            key_file=key_file,
            tokens=TokenSource(token, token_file),
            timeout=timeout,
            wait_for_ready=wait_for_ready,
            options=list(options.items()),
        )

    def channel_credentials(self) -> Optional[grpc.ChannelCredentials]:
        """TLS credentials (None for plaintext). Raises OSError when a file cannot be read."""
        if not self.use_tls:
            return None
        return grpc.ssl_channel_credentials(
            root_certificates=_read_bytes(self.ca_file),
            private_key=_read_bytes(self.key_file),
            certificate_chain=_read_bytes(self.cert_file),
        )


def _split_target(target: str) -> Tuple[str, Optional[bool]]:
    """``https://h:p`` -> (``h:p``, True); ``http://h:p`` -> (``h:p``, False); ``h:p`` -> (``h:p``, None)."""
    for scheme, secure in (("https://", True), ("http://", False)):
        if target.lower().startswith(scheme):
            return target[len(scheme):].rstrip("/"), secure
    return target, None


def _read_bytes(path: Optional[PathLike]) -> Optional[bytes]:
    if path is None:
        return None
    with open(path, "rb") as handle:
        return handle.read()


def _retry_service_config(max_attempts: int, initial_backoff: float, max_backoff: float) -> str:
    method_config: dict = {"name": [{"service": SERVICE}]}
    if max_attempts > 1:
        method_config["retryPolicy"] = {
            "maxAttempts": max_attempts,
            "initialBackoff": f"{initial_backoff:g}s",
            "maxBackoff": f"{max_backoff:g}s",
            "backoffMultiplier": 2,
            "retryableStatusCodes": ["UNAVAILABLE"],
        }
    # PutSecret is never retried by the channel: an UNAVAILABLE answer can follow a write that happened, and a
    # retry would write a second version (or fail its check-and-set). The more specific name wins (gRPC service config).
    no_retry = {"name": [{"service": SERVICE, "method": "PutSecret"}]}
    return json.dumps({"methodConfig": [method_config, no_retry]})
