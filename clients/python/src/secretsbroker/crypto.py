"""Envelope encryption of files and buffers through the broker's Crypto service.

Model checkpoints, safetensors files and feature snapshots are encrypted here, in the client: the broker
hands out a data key (``GenerateDataKey``, capability ``datakey`` on the key path), the data is sealed
locally in AES-256-GCM chunks (the STREAM construction of Tink's streaming AEAD; format in
docs/envelope-format.md, shared with the C# client and brokerctl) and only the wrapped data key is stored,
in the file's header. Decrypting sends the wrapped key to ``DecryptDataKey``. Memory stays at about two
chunks (1 MiB each by default) whatever the size of the file. Needs the ``cryptography`` package
(Debian: python3-cryptography; pip: ``secretsbroker[crypto]``).

Example::

    import io, torch
    from secretsbroker import crypto

    crypto.encrypt_file("model.safetensors", "model.safetensors.sbef", "keys/demo", context={"model": "resnet"})
    crypto.decrypt_file("model.safetensors.sbef", "model.safetensors", context={"model": "resnet"})

    buffer = io.BytesIO(); torch.save(state, buffer); buffer.seek(0)
    with open("ckpt.sbef", "wb") as out:
        crypto.encrypt_stream(buffer, out, "keys/demo")

The ``context`` is bound to the data key (and stored in the header in the clear: no secrets in it); the
same context is needed to decrypt. Every function takes ``client=`` (a :class:`secretsbroker.Client`);
without it the default client from the environment is used.

Errors: :class:`EnvelopeError` subclasses for a damaged, truncated, reordered, swapped or foreign file, a
wrong key or a wrong context; :class:`secretsbroker.SecretsBrokerError` subclasses when the broker refuses
(PermissionDenied without ``datakey``, InvalidArgument for a wrapped key under another context, ...).
"""

from __future__ import annotations

import os
import secrets
from typing import BinaryIO, Mapping, Optional, Union

from ._envelope import (
    DEFAULT_CHUNK_SIZE,
    ChunkAuthenticationError,
    ContextMismatchError,
    DataKey,
    EnvelopeError,
    EnvelopeFormatError,
    EnvelopeTruncatedError,
    Header,
    KeyPathMismatchError,
    WrongKeyError,
    open_sealed,
    read_header,
    seal,
)

__all__ = [
    "encrypt_file", "decrypt_file", "encrypt_stream", "decrypt_stream", "read_header",
    "encrypt_stream_with_key", "decrypt_stream_with_key",
    "DataKey", "Header", "DEFAULT_CHUNK_SIZE",
    "EnvelopeError", "EnvelopeFormatError", "EnvelopeTruncatedError", "WrongKeyError",
    "ContextMismatchError", "KeyPathMismatchError", "ChunkAuthenticationError",
]

PathLike = Union[str, "os.PathLike[str]"]


def _client(client):  # type: ignore[no-untyped-def]
    if client is not None:
        return client
    from ._default import default_client

    return default_client()


def encrypt_stream(reader: BinaryIO, writer: BinaryIO, key_path: str, *, context: Optional[Mapping[str, str]] = None,
                   client=None, chunk_size: int = DEFAULT_CHUNK_SIZE, timeout: Optional[float] = None) -> Header:  # type: ignore[no-untyped-def]
    """Encrypts everything ``reader`` yields (a file, ``io.BytesIO``, ...) to ``writer`` under a fresh data key of ``key_path``."""
    data_key = _client(client).generate_data_key(key_path, context=context, timeout=timeout)
    return seal(reader, writer, data_key, context, chunk_size)


def decrypt_stream(reader: BinaryIO, writer: BinaryIO, *, context: Optional[Mapping[str, str]] = None, key_path: Optional[str] = None,
                   client=None, timeout: Optional[float] = None) -> Header:  # type: ignore[no-untyped-def]
    """Decrypts an envelope from ``reader`` to ``writer``; ``key_path``, when given, must be the file's key.

    Chunks are written as they authenticate: when this raises, discard what ``writer`` received (or use
    :func:`decrypt_file`, which does).
    """
    broker = _client(client)
    return open_sealed(reader, writer, lambda h: broker.decrypt_data_key(h.wrapped_key, context=context, key_path=h.key_path, timeout=timeout),
                       context, key_path)


def encrypt_stream_with_key(reader: BinaryIO, writer: BinaryIO, data_key: DataKey, *, context: Optional[Mapping[str, str]] = None,
                            chunk_size: int = DEFAULT_CHUNK_SIZE) -> Header:
    """Encrypts under a data key the caller already holds (from :meth:`Client.generate_data_key`)."""
    return seal(reader, writer, data_key, context, chunk_size)


def decrypt_stream_with_key(reader: BinaryIO, writer: BinaryIO, plaintext_key: bytes, *, context: Optional[Mapping[str, str]] = None,
                            key_path: Optional[str] = None) -> Header:
    """Decrypts with a data key the caller already unwrapped."""
    return open_sealed(reader, writer, lambda h: DataKey(bytes(plaintext_key), h.wrapped_key, h.key_path, ""), context, key_path)


def encrypt_file(src: PathLike, dst: PathLike, key_path: str, *, context: Optional[Mapping[str, str]] = None, client=None,
                 chunk_size: int = DEFAULT_CHUNK_SIZE, timeout: Optional[float] = None) -> Header:  # type: ignore[no-untyped-def]
    """Encrypts the file ``src`` to ``dst`` (written to a temporary file beside it, then renamed)."""
    with open(src, "rb") as reader:
        return _write_atomically(dst, lambda writer: encrypt_stream(
            reader, writer, key_path, context=context, client=client, chunk_size=chunk_size, timeout=timeout))


def decrypt_file(src: PathLike, dst: PathLike, *, context: Optional[Mapping[str, str]] = None, key_path: Optional[str] = None,
                 client=None, timeout: Optional[float] = None) -> Header:  # type: ignore[no-untyped-def]
    """Decrypts the envelope file ``src`` to ``dst``.

    The plaintext goes to a temporary file (mode 0600) in ``dst``'s directory, renamed over ``dst`` only
    after the last chunk authenticated; on any failure it is removed and ``dst`` is left as it was.
    """
    with open(src, "rb") as reader:
        return _write_atomically(dst, lambda writer: decrypt_stream(
            reader, writer, context=context, key_path=key_path, client=client, timeout=timeout))


def _write_atomically(dst: PathLike, write):  # type: ignore[no-untyped-def]
    target = os.path.abspath(os.fspath(dst))
    directory, name = os.path.split(target)
    temporary = os.path.join(directory, f".{name}.{secrets.token_hex(6)}.partial")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "wb") as writer:
            result = write(writer)
            writer.flush()
            os.fsync(writer.fileno())
        os.replace(temporary, target)
        return result
    except BaseException:
        try:
            os.unlink(temporary)
        except FileNotFoundError:
            pass
        raise
