"""Crypto service calls (protos/secretsbroker/v1/crypto.proto) for the sync and asyncio clients.

Requests and results are built here once; :class:`CryptoMethods` and
:class:`secretsbroker.aio._crypto.AsyncCryptoMethods` only call them. Plaintext, keys and context values
never appear in exceptions (the broker's messages hold none either).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping, Optional

from .v1 import crypto_pb2 as pb


@dataclass(frozen=True)
class DataKey:
    """A data key as ``GenerateDataKey`` returns it: use ``plaintext_key`` and forget it, store ``wrapped_key``."""

    plaintext_key: bytes
    wrapped_key: bytes
    key_path: str
    key_version: str

    def __repr__(self) -> str:
        return f"DataKey(key_path={self.key_path!r}, key_version={self.key_version!r})"


def _context(context: Optional[Mapping[str, str]]) -> Mapping[str, str]:
    if context is None:
        return {}
    for key, value in context.items():
        if not isinstance(key, str) or not isinstance(value, str):
            raise TypeError("context keys and values must be str")
    return context


def _bytes(value: Any, what: str) -> bytes:
    if isinstance(value, str):
        raise TypeError(f"{what} must be bytes, not str (encode it first)")
    return bytes(value)


def encrypt(key_path: str, plaintext: bytes, context: Optional[Mapping[str, str]]) -> pb.EncryptRequest:
    return pb.EncryptRequest(key_path=key_path, plaintext=_bytes(plaintext, "plaintext"), context=_context(context))


def decrypt(ciphertext: bytes, context: Optional[Mapping[str, str]], key_path: Optional[str]) -> pb.DecryptRequest:
    return pb.DecryptRequest(key_path=key_path or "", ciphertext=_bytes(ciphertext, "ciphertext"), context=_context(context))


def generate_data_key(key_path: str, context: Optional[Mapping[str, str]]) -> pb.GenerateDataKeyRequest:
    return pb.GenerateDataKeyRequest(key_path=key_path, context=_context(context))


def decrypt_data_key(wrapped_key: bytes, context: Optional[Mapping[str, str]], key_path: Optional[str]) -> pb.DecryptDataKeyRequest:
    return pb.DecryptDataKeyRequest(key_path=key_path or "", wrapped_key=_bytes(wrapped_key, "wrapped_key"), context=_context(context))


def rewrap(ciphertext: bytes, context: Optional[Mapping[str, str]], key_path: Optional[str]) -> pb.RewrapRequest:
    return pb.RewrapRequest(key_path=key_path or "", ciphertext=_bytes(ciphertext, "ciphertext"), context=_context(context))


def data_key(response: Any, wrapped_key: Optional[bytes] = None) -> DataKey:
    """A GenerateDataKey or DecryptDataKey response as a DataKey (the latter has no wrapped key: the caller's)."""
    wrapped = bytes(response.wrapped_key) if wrapped_key is None else bytes(wrapped_key)
    return DataKey(bytes(response.plaintext_key), wrapped, response.key_path, response.key_version)


class CryptoMethods:
    """Small values and data keys through the broker; mixed into :class:`secretsbroker.Client`.

    Capabilities on the key path: ``encrypt`` (encrypt, rewrap), ``decrypt`` (decrypt, rewrap),
    ``datakey`` (generate_data_key, decrypt_data_key). Raises the client's usual errors: InvalidArgument
    (wrong context, a ciphertext of another key), ResourceExhausted (over the per-call limit: use
    :mod:`secretsbroker.crypto` for large data), PermissionDenied, NotFound, ...
    """

    _crypto_stub: Any

    def _call(self, method: Any, request: Any, timeout: Optional[float], path: Optional[str]) -> Any:  # pragma: no cover - the client's
        raise NotImplementedError

    def encrypt(self, key_path: str, plaintext: bytes, *, context: Optional[Mapping[str, str]] = None, timeout: Optional[float] = None) -> bytes:
        """Encrypts a small value under the latest version of ``key_path``; returns the self-describing ciphertext."""
        return bytes(self._call(self._crypto_stub.Encrypt, encrypt(key_path, plaintext, context), timeout, key_path).ciphertext)

    def decrypt(self, ciphertext: bytes, *, context: Optional[Mapping[str, str]] = None, key_path: Optional[str] = None,
                timeout: Optional[float] = None) -> bytes:
        """Decrypts a ciphertext of :meth:`encrypt` (or :meth:`rewrap`); ``key_path``, when given, must be the key it names."""
        return bytes(self._call(self._crypto_stub.Decrypt, decrypt(ciphertext, context, key_path), timeout, key_path).plaintext)

    def generate_data_key(self, key_path: str, *, context: Optional[Mapping[str, str]] = None, timeout: Optional[float] = None) -> DataKey:
        """A fresh 256-bit :class:`~secretsbroker.crypto.DataKey`, in plaintext and wrapped under the latest version of ``key_path``."""
        return data_key(self._call(self._crypto_stub.GenerateDataKey, generate_data_key(key_path, context), timeout, key_path))

    def decrypt_data_key(self, wrapped_key: bytes, *, context: Optional[Mapping[str, str]] = None, key_path: Optional[str] = None,
                         timeout: Optional[float] = None) -> DataKey:
        """Unwraps a data key of :meth:`generate_data_key`: a :class:`~secretsbroker.crypto.DataKey` (``plaintext_key``, ``key_version``)."""
        request = decrypt_data_key(wrapped_key, context, key_path)
        return data_key(self._call(self._crypto_stub.DecryptDataKey, request, timeout, key_path), wrapped_key)

    def rewrap(self, ciphertext: bytes, *, context: Optional[Mapping[str, str]] = None, key_path: Optional[str] = None,
               timeout: Optional[float] = None) -> bytes:
        """Re-encrypts a ciphertext (or wrapped key) under the key's latest version without returning the plaintext."""
        return bytes(self._call(self._crypto_stub.Rewrap, rewrap(ciphertext, context, key_path), timeout, key_path).ciphertext)
