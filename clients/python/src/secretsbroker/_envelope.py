"""The envelope file format (docs/envelope-format.md), byte for byte as the C# client writes it.

Header: magic ``SBEF``, version 1, algorithm 1, header length, chunk size, salt, nonce prefix, key path,
key version, wrapped data key, context, key commitment. Chunks: AES-256-GCM under a file key derived with
HKDF-SHA256 from the data key, nonce = 7-byte prefix || u32 big-endian chunk index || last-chunk flag, the
STREAM construction of Tink's streaming AEAD (``AesGcmHkdfStreaming``). No broker calls here: see
:mod:`secretsbroker.crypto`.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import struct
from dataclasses import dataclass, replace
from typing import BinaryIO, Callable, List, Mapping, Optional, Tuple

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from ._crypto_calls import DataKey

DEFAULT_CHUNK_SIZE = 1 << 20
MIN_CHUNK_SIZE = 4096
MAX_CHUNK_SIZE = 16 << 20
MAX_HEADER_LENGTH = 65536
TAG_LENGTH = 16
_MAGIC = b"SBEF"
_KDF_LABEL = b"SBEF v1 file key"
_SALT, _PREFIX, _COMMITMENT, _FIXED = 32, 7, 32, 53
_MIN_HEADER = _FIXED + 2 + 1 + 2 + 2 + 1 + 2 + _COMMITMENT
_MAX_KEY_PATH, _MAX_KEY_VERSION, _MAX_WRAPPED = 1024, 256, 8192
_MAX_ENTRIES, _MAX_CONTEXT_KEY, _MAX_CONTEXT_VALUE = 64, 256, 1024


class EnvelopeError(ValueError):
    """An envelope file that cannot be decrypted. Messages never hold plaintext, keys or context values."""


class EnvelopeFormatError(EnvelopeError):
    """Not an envelope file, an unsupported version or algorithm, or a malformed header."""


class EnvelopeTruncatedError(EnvelopeError):
    """The file ends inside its header, inside a chunk, or before its last chunk."""


class WrongKeyError(EnvelopeError):
    """The data key does not match the header: a wrong key, or an edited header."""


class ContextMismatchError(EnvelopeError):
    """The caller's context is not the one the file was encrypted under."""


class KeyPathMismatchError(EnvelopeError):
    """The file was encrypted under another key path than the caller expects."""


class ChunkAuthenticationError(EnvelopeError):
    """A chunk failed authentication: modified, reordered, duplicated, dropped or from another file."""


Context = List[Tuple[str, str]]


def canonical_context(context: Optional[Mapping[str, str]]) -> Context:
    """The context as a header stores it: checked, sorted by the keys' UTF-8 bytes."""
    entries = list((context or {}).items())
    if len(entries) > _MAX_ENTRIES:
        raise ValueError(f"a context holds at most {_MAX_ENTRIES} entries")
    for key, value in entries:
        if not isinstance(key, str) or not isinstance(value, str):
            raise TypeError("context keys and values must be str")
        _check_length(key, 1, _MAX_CONTEXT_KEY, "a context key")
        _check_length(value, 0, _MAX_CONTEXT_VALUE, "a context value")
    return sorted(entries, key=lambda entry: entry[0].encode("utf-8"))


@dataclass(frozen=True)
class Header:
    """A parsed envelope header."""

    chunk_size: int
    salt: bytes
    nonce_prefix: bytes
    key_path: str
    key_version: str
    wrapped_key: bytes
    context: Context
    commitment: bytes
    bound: bytes  # what the file key derives from: every byte but length, key version, wrapped key, commitment

    def encode(self) -> bytes:
        return _encode(self.chunk_size, self.salt, self.nonce_prefix, self.key_path, self.key_version, self.wrapped_key, self.context, self.commitment)

    def derive_keys(self, data_key: bytes) -> Tuple[bytes, bytes]:
        """(file key, key commitment) = HKDF-SHA256(data key, salt, "SBEF v1 file key" || SHA-256(bound)), 64 bytes split."""
        if len(data_key) != 32:
            raise WrongKeyError(f"the data key is {len(data_key)} bytes, not 32")
        info = _KDF_LABEL + hashlib.sha256(self.bound).digest()
        okm = HKDF(algorithm=hashes.SHA256(), length=64, salt=self.salt, info=info).derive(bytes(data_key))
        return okm[:32], okm[32:]


def _check_length(value: str, low: int, high: int, what: str) -> None:
    length = len(value.encode("utf-8"))  # raises UnicodeEncodeError (a ValueError) on lone surrogates
    if not low <= length <= high:
        raise ValueError(f"{what} must be {low} to {high} UTF-8 bytes")


def _field(value: bytes) -> bytes:
    return struct.pack(">H", len(value)) + value


def _encode(chunk_size: int, salt: bytes, prefix: bytes, key_path: str, key_version: str, wrapped: bytes, context: Context, commitment: bytes) -> bytes:
    body = b"".join([
        struct.pack(">I", chunk_size), salt, prefix,
        _field(key_path.encode("utf-8")), _field(key_version.encode("utf-8")), _field(wrapped),
        struct.pack(">H", len(context)),
        *(_field(k.encode("utf-8")) + _field(v.encode("utf-8")) for k, v in context),
        commitment,
    ])
    length = 10 + len(body)
    if length > MAX_HEADER_LENGTH:
        raise ValueError(f"the header would be {length} bytes, more than {MAX_HEADER_LENGTH}: shorten the context")
    return _MAGIC + b"\x01\x01" + struct.pack(">I", length) + body


def new_header(data_key: DataKey, context: Optional[Mapping[str, str]], chunk_size: int) -> Header:
    if not MIN_CHUNK_SIZE <= chunk_size <= MAX_CHUNK_SIZE:
        raise ValueError(f"the chunk size must be {MIN_CHUNK_SIZE} to {MAX_CHUNK_SIZE} bytes")
    _check_length(data_key.key_path, 1, _MAX_KEY_PATH, "the key path")
    _check_length(data_key.key_version, 0, _MAX_KEY_VERSION, "the key version")
    if not 1 <= len(data_key.wrapped_key) <= _MAX_WRAPPED:
        raise ValueError(f"the wrapped key must be 1 to {_MAX_WRAPPED} bytes")
    encoded = _encode(chunk_size, os.urandom(_SALT), os.urandom(_PREFIX), data_key.key_path, data_key.key_version,
                      bytes(data_key.wrapped_key), canonical_context(context), bytes(_COMMITMENT))
    return parse_header(encoded)


def _check_version(start: bytes) -> None:
    if start[4] != 1:
        raise EnvelopeFormatError(f"unsupported envelope format version {start[4]} (this client reads version 1)")
    if start[5] != 1:
        raise EnvelopeFormatError(f"unsupported envelope algorithm {start[5]} (this client knows algorithm 1, AES-256-GCM STREAM)")


def read_header(reader: BinaryIO) -> Header:
    """Reads and parses the header at the start of ``reader``, leaving it at the first chunk."""
    start = read_full(reader, 10)
    if len(start) < 4 or start[:4] != _MAGIC:
        raise EnvelopeFormatError("not a SecretsBroker envelope file (no SBEF magic)")
    if len(start) < 10:
        raise EnvelopeTruncatedError("the file ends inside its header")
    _check_version(start)
    (length,) = struct.unpack(">I", start[6:10])
    if not _MIN_HEADER <= length <= MAX_HEADER_LENGTH:
        raise EnvelopeFormatError(f"malformed header: header length {length} outside {_MIN_HEADER}..{MAX_HEADER_LENGTH}")
    rest = read_full(reader, length - 10)
    if len(rest) < length - 10:
        raise EnvelopeTruncatedError("the file ends inside its header")
    return parse_header(start + rest)


def parse_header(data: bytes) -> Header:
    _check_version(data)
    (chunk_size,) = struct.unpack(">I", data[10:14])
    if not MIN_CHUNK_SIZE <= chunk_size <= MAX_CHUNK_SIZE:
        raise EnvelopeFormatError(f"malformed header: chunk size {chunk_size} outside {MIN_CHUNK_SIZE}..{MAX_CHUNK_SIZE}")
    position = _FIXED

    def take(low: int, high: int, what: str) -> bytes:
        nonlocal position
        if len(data) - position < 2 + _COMMITMENT:
            raise EnvelopeFormatError("malformed header: a field runs past the header's end")
        (size,) = struct.unpack(">H", data[position:position + 2])
        if not low <= size <= high:
            raise EnvelopeFormatError(f"malformed header: {what} of {size} bytes, outside {low}..{high}")
        if len(data) - position - 2 < size + _COMMITMENT:
            raise EnvelopeFormatError("malformed header: a field runs past the header's end")
        position += 2 + size
        return data[position - size:position]

    def text(value: bytes, what: str) -> str:
        try:
            return value.decode("utf-8")
        except UnicodeDecodeError:
            raise EnvelopeFormatError(f"malformed header: {what} is not UTF-8") from None

    key_path = text(take(1, _MAX_KEY_PATH, "key path"), "key path")
    key_path_field = data[_FIXED:position]
    key_version = text(take(0, _MAX_KEY_VERSION, "key version"), "key version")
    wrapped = take(1, _MAX_WRAPPED, "wrapped key")
    context_start = position
    if len(data) - position < 2 + _COMMITMENT:
        raise EnvelopeFormatError("malformed header: a field runs past the header's end")
    (count,) = struct.unpack(">H", data[position:position + 2])
    position += 2
    if count > _MAX_ENTRIES:
        raise EnvelopeFormatError(f"malformed header: {count} context entries, more than {_MAX_ENTRIES}")
    context: Context = []
    previous: Optional[bytes] = None
    for _ in range(count):
        key = take(1, _MAX_CONTEXT_KEY, "context key")
        if previous is not None and previous >= key:
            raise EnvelopeFormatError("malformed header: context keys unsorted or repeated")
        previous = key
        context.append((text(key, "context key"), text(take(0, _MAX_CONTEXT_VALUE, "context value"), "context value")))
    if len(data) - position != _COMMITMENT:
        raise EnvelopeFormatError("malformed header: its fields do not add up to its length")
    bound = data[0:6] + data[10:_FIXED] + key_path_field + data[context_start:position]
    return Header(chunk_size, data[14:46], data[46:53], key_path, key_version, wrapped, context, data[position:], bound)


def read_full(reader: BinaryIO, size: int) -> bytes:
    """Reads ``size`` bytes, fewer only at the end of the stream."""
    parts: List[bytes] = []
    remaining = size
    while remaining > 0:
        part = reader.read(remaining)
        if not part:
            break
        parts.append(part)
        remaining -= len(part)
    return parts[0] if len(parts) == 1 else b"".join(parts)


def _nonce(prefix: bytes, index: int, last: bool) -> bytes:
    # nonce prefix (7) || chunk index u32 big-endian (4) || last-chunk flag (1), as Tink's AesGcmHkdfStreaming.
    return prefix + struct.pack(">IB", index, 1 if last else 0)


def _reader_into(reader: BinaryIO) -> Callable[[memoryview], int]:
    """``fill(view)`` reads into ``view`` until it is full or the stream ends (returns the count), with ``readinto``
    (files, BytesIO, buffered and raw streams) so a chunk lands in a reused buffer; readers with only ``read`` are copied in."""
    def read_once(view: memoryview) -> int:
        part = reader.read(len(view)) or b""
        view[:len(part)] = part
        return len(part)

    once = getattr(reader, "readinto", None) or read_once

    def fill(view: memoryview) -> int:
        total = 0
        while total < len(view):
            n = once(view[total:])
            if not n:  # 0 at the end (None: a non-blocking stream with nothing yet, which read_full also ends on)
                break
            total += n
        return total

    return fill


# AES-GCM through the Cipher API rather than AESGCM: update_into seals and opens straight into a reused buffer,
# where AESGCM.encrypt/decrypt return fresh bytes per chunk (Debian's cryptography 38 also slices the tag off the
# chunk and copies its result out of a cffi buffer: hazmat/backends/openssl/aead.py). update_into needs room for
# len(data) + 15 bytes (cryptography's CipherContext.update_into docs). Whether a chunk is the last one is known by
# reading one byte past it, carried over to the start of the next chunk (no second chunk read ahead). Writers receive memoryviews of these buffers, valid only during write(): the io.RawIOBase/BufferedIOBase
# write() contract ("the caller may release or mutate b after this method returns").
_SLACK = 15


def seal(reader: BinaryIO, writer: BinaryIO, data_key: DataKey, context: Optional[Mapping[str, str]], chunk_size: int) -> Header:
    """Writes the envelope of everything ``reader`` yields to ``writer`` under ``data_key``; two chunk buffers."""
    header = new_header(data_key, context, chunk_size)
    file_key, commitment = header.derive_keys(data_key.plaintext_key)
    header = replace(header, commitment=commitment)
    writer.write(header.encode())
    aes = algorithms.AES(file_key)
    fill = _reader_into(reader)
    plaintext = memoryview(bytearray(chunk_size + 1))  # the chunk, then the next chunk's first byte
    sealed = memoryview(bytearray(chunk_size + _SLACK + 1))  # ciphertext, then its 16-byte tag
    pending = 0
    index = 0
    while True:
        count = pending + fill(plaintext[pending:])
        last = count <= chunk_size
        length = count if last else chunk_size
        encryptor = Cipher(aes, modes.GCM(_nonce(header.nonce_prefix, index, last))).encryptor()
        encryptor.update_into(plaintext[:length], sealed)
        encryptor.finalize()
        sealed[length:length + TAG_LENGTH] = encryptor.tag
        writer.write(sealed[:length + TAG_LENGTH])
        if last:
            return header
        if index == 0xFFFFFFFF:
            raise ValueError("the data needs more than 2^32 chunks: use a larger chunk size")
        plaintext[0], pending, index = plaintext[chunk_size], 1, index + 1


def open_sealed(reader: BinaryIO, writer: BinaryIO, unwrap: Callable[[Header], DataKey],
                context: Optional[Mapping[str, str]], key_path: Optional[str]) -> Header:
    """Decrypts an envelope from ``reader`` to ``writer``, a chunk at a time once each authenticated.

    ``unwrap(header)`` returns the :class:`DataKey` the key store unwrapped from the header's wrapped key.
    """
    header = read_header(reader)
    if key_path is not None and key_path != header.key_path:
        raise KeyPathMismatchError(f"the file was encrypted under key {header.key_path!r}, not {key_path!r}")
    if canonical_context(context) != header.context:
        keys = ", ".join(k for k, _ in header.context)
        raise ContextMismatchError(f"the file was encrypted under a different context (its context has the keys [{keys}])")
    unwrapped = unwrap(header)
    # Key version and wrapped key stay out of the file key (so a rewrapped header opens the same chunks):
    # the version is checked against the one the key store reports instead.
    if unwrapped.key_version and unwrapped.key_version != header.key_version:
        raise WrongKeyError(f"the header names key version {header.key_version!r} but the key store unwrapped its data key "
                            f"with version {unwrapped.key_version!r}: modified header")
    file_key, commitment = header.derive_keys(unwrapped.plaintext_key)
    if not hmac.compare_digest(commitment, header.commitment):
        raise WrongKeyError("the data key does not open this file: wrong data key or modified header")
    aes = algorithms.AES(file_key)
    fill = _reader_into(reader)
    sealed_size = header.chunk_size + TAG_LENGTH
    sealed = memoryview(bytearray(sealed_size + 1))  # the sealed chunk, then the next chunk's first byte
    plaintext = memoryview(bytearray(header.chunk_size + _SLACK))
    pending = 0
    index = 0
    while True:
        count = pending + fill(sealed[pending:])
        if count < TAG_LENGTH:
            raise EnvelopeTruncatedError(
                f"the file ends after chunk {index - 1}, before its last chunk" if not count else f"the file ends inside chunk {index}")
        last = count <= sealed_size
        chunk = sealed[:count if last else sealed_size]
        if not _open_into(aes, header.nonce_prefix, index, last, chunk, plaintext):
            if last and len(chunk) == sealed_size and _open_into(aes, header.nonce_prefix, index, False, chunk, plaintext):
                raise EnvelopeTruncatedError(f"the file ends after chunk {index}, before its last chunk")
            raise ChunkAuthenticationError(
                f"chunk {index} failed authentication: the file was modified, truncated, or its chunks reordered, "
                "duplicated, dropped or taken from another file")
        writer.write(plaintext[:len(chunk) - TAG_LENGTH])
        if last:
            return header
        sealed[0], pending, index = sealed[sealed_size], 1, index + 1


def _open_into(aes: algorithms.AES, prefix: bytes, index: int, last: bool, chunk: memoryview, plaintext: memoryview) -> bool:
    """Opens ``chunk`` (ciphertext || tag) into ``plaintext``; on a failed tag, wipes what was decrypted."""
    length = len(chunk) - TAG_LENGTH
    decryptor = Cipher(aes, modes.GCM(_nonce(prefix, index, last), bytes(chunk[length:]))).decryptor()
    decryptor.update_into(chunk[:length], plaintext)
    try:
        decryptor.finalize()
        return True
    except InvalidTag:
        plaintext[:length] = bytes(length)
        return False
