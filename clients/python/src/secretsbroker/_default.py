"""The module-level API: ``secretsbroker.get_secret(path)`` and friends on a lazily created default client.

ML code tends to read secrets from anywhere (``from ml_secrets import get_secret``), far from where a client
could be passed in. The default client is configured from the environment (``$SECRETSBROKER_ADDRESS``,
``$SECRETSBROKER_TOKEN_FILE`` or ``$SECRETSBROKER_TOKEN``, ``$SECRETSBROKER_CA_FILE``), created on first
use by exactly one thread, and closed at interpreter exit. A forked child (a DataLoader worker, for
example) gets its own: gRPC channels do not survive a fork.
"""

from __future__ import annotations

import atexit
import os
import threading
from typing import Iterable, Iterator, List, Mapping, Optional, Union

from .client import Client
from .models import BatchResult, Rotation, Secret, SecretListing, WrittenSecret

# Leases and watches are long-lived objects: take them from ``default_client()`` (module functions named
# ``lease``/``watch`` would shadow the submodules of the same names).
__all__ = ["default_client", "close_default_client", "get_secret", "batch_get", "list_secrets"]

_lock = threading.Lock()
_client: Optional[Client] = None
_pid: Optional[int] = None


def default_client() -> Client:
    """The process's default :class:`Client`, created from the environment on first use (thread-safe).

    Raises:
        ValueError: ``$SECRETSBROKER_ADDRESS`` is not set (or the environment is contradictory).
    """
    global _client, _pid
    client, pid = _client, os.getpid()
    if client is not None and _pid == pid:
        return client
    with _lock:
        if _client is None or _pid != pid:
            # After a fork the parent's channel is unusable here; it is not closed (it is the parent's).
            _client, _pid = Client(), pid
        return _client


def close_default_client() -> None:
    """Closes the default client (its leases are revoked, its watches closed); the next call makes a new one."""
    global _client, _pid
    with _lock:
        client, _client = _client, None
        owned = _pid == os.getpid()
        _pid = None
    if client is not None and owned:
        client.close()


atexit.register(close_default_client)


def get_secret(
    path: str,
    version: Union[str, int, None] = None,
    stage: Optional[str] = None,
    *,
    max_age: Optional[float] = None,
    bypass_cache: bool = False,
    timeout: Optional[float] = None,
) -> Secret:
    """:meth:`Client.get_secret` on the default client: ``secretsbroker.get_secret("kv/teams/ml/db")["password"]``."""
    return default_client().get_secret(path, version, stage, max_age=max_age, bypass_cache=bypass_cache, timeout=timeout)


def put_secret(
    path: str,
    data: Optional[Mapping[str, str]] = None,
    *,
    binary: Optional[bytes] = None,
    expected_version: Union[str, int, None] = None,
    timeout: Optional[float] = None,
) -> WrittenSecret:
    """:meth:`Client.put_secret` on the default client."""
    return default_client().put_secret(path, data, binary=binary, expected_version=expected_version, timeout=timeout)


def rotate_secret(path: str, *, timeout: Optional[float] = None) -> Rotation:
    """:meth:`Client.rotate_secret` on the default client."""
    return default_client().rotate_secret(path, timeout=timeout)


def batch_get(paths: Iterable[str], *, timeout: Optional[float] = None) -> List[BatchResult]:
    """:meth:`Client.batch_get` on the default client."""
    return default_client().batch_get(paths, timeout=timeout)


def list_secrets(prefix: str, page_size: Optional[int] = None, *, timeout: Optional[float] = None) -> Iterator[SecretListing]:
    """:meth:`Client.list` on the default client (named so as not to shadow the builtin ``list``)."""
    return default_client().list(prefix, page_size, timeout=timeout)
