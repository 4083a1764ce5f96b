"""The Crypto service calls of :class:`secretsbroker.aio.Client` (see :mod:`secretsbroker._crypto_calls`)."""

from __future__ import annotations

from typing import Any, Mapping, Optional

from .. import _crypto_calls as cq


class AsyncCryptoMethods:
    """:class:`secretsbroker._crypto_calls.CryptoMethods` as coroutines."""

    _crypto_stub: Any

    async def _call(self, method: Any, request: Any, timeout: Optional[float], path: Optional[str]) -> Any:  # pragma: no cover - the client's
        raise NotImplementedError

    async def encrypt(self, key_path: str, plaintext: bytes, *, context: Optional[Mapping[str, str]] = None, timeout: Optional[float] = None) -> bytes:
        """Encrypts a small value under the latest version of ``key_path``."""
        return bytes((await self._call(self._crypto_stub.Encrypt, cq.encrypt(key_path, plaintext, context), timeout, key_path)).ciphertext)

    async def decrypt(self, ciphertext: bytes, *, context: Optional[Mapping[str, str]] = None, key_path: Optional[str] = None,
                      timeout: Optional[float] = None) -> bytes:
        """Decrypts a ciphertext of :meth:`encrypt`."""
        return bytes((await self._call(self._crypto_stub.Decrypt, cq.decrypt(ciphertext, context, key_path), timeout, key_path)).plaintext)

    async def generate_data_key(self, key_path: str, *, context: Optional[Mapping[str, str]] = None, timeout: Optional[float] = None) -> Any:
        """A fresh :class:`~secretsbroker.crypto.DataKey` of ``key_path``."""
        return cq.data_key(await self._call(self._crypto_stub.GenerateDataKey, cq.generate_data_key(key_path, context), timeout, key_path))

    async def decrypt_data_key(self, wrapped_key: bytes, *, context: Optional[Mapping[str, str]] = None, key_path: Optional[str] = None,
                               timeout: Optional[float] = None) -> Any:
        """Unwraps a data key of :meth:`generate_data_key`: a :class:`~secretsbroker.crypto.DataKey`."""
        request = cq.decrypt_data_key(wrapped_key, context, key_path)
        return cq.data_key(await self._call(self._crypto_stub.DecryptDataKey, request, timeout, key_path), wrapped_key)

    async def rewrap(self, ciphertext: bytes, *, context: Optional[Mapping[str, str]] = None, key_path: Optional[str] = None,
                     timeout: Optional[float] = None) -> bytes:
        """Re-encrypts under the key's latest version without returning the plaintext."""
        return bytes((await self._call(self._crypto_stub.Rewrap, cq.rewrap(ciphertext, context, key_path), timeout, key_path)).ciphertext)
