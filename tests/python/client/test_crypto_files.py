"""secretsbroker.crypto: the envelope file format (docs/envelope-format.md) with locally generated data keys.

``LocalKeys`` stands in for the broker's key store the way its local keyring works (256-bit data keys
wrapped with AES-256-GCM, key path and context as AAD), so the format's properties are tested without a
broker; tests against a real broker and across languages are in test_crypto_broker.py.
"""

from __future__ import annotations

import io
import os
import struct
import tracemalloc
from typing import Dict, List, Mapping, Optional

import pytest

pytest.importorskip("cryptography")

from cryptography.exceptions import InvalidTag  # noqa: E402
from cryptography.hazmat.primitives.ciphers.aead import AESGCM  # noqa: E402

from secretsbroker import crypto  # noqa: E402
from secretsbroker.crypto import DataKey  # noqa: E402

CHUNK = 4096
CONTEXT = {"model": "resnet-fake", "stage": "train"}


class LocalKeys:
    """generate_data_key / decrypt_data_key as the client offers them, over a per-instance key-encryption key."""

    def __init__(self) -> None:
        self._kek = AESGCM(AESGCM.generate_key(256))
        self.unwraps = 0

    @staticmethod
    def _aad(key_path: str, context: Optional[Mapping[str, str]]) -> bytes:
        return "\n".join([key_path] + [f"{k}={v}" for k, v in sorted((context or {}).items())]).encode()

    def generate_data_key(self, key_path: str, *, context=None, timeout=None) -> DataKey:
        key, nonce = os.urandom(32), os.urandom(12)
        return DataKey(key, nonce + self._kek.encrypt(nonce, key, self._aad(key_path, context)), key_path, "1")

    def decrypt_data_key(self, wrapped_key: bytes, *, context=None, key_path=None, timeout=None) -> DataKey:
        self.unwraps += 1
        return DataKey(self._kek.decrypt(wrapped_key[:12], wrapped_key[12:], self._aad(key_path, context)), wrapped_key, key_path, "1")


KEY_PATH = "local/test-envelope"


def seal(keys: LocalKeys, data: bytes, context: Optional[Mapping[str, str]] = CONTEXT, chunk: int = CHUNK) -> bytes:
    out = io.BytesIO()
    crypto.encrypt_stream(io.BytesIO(data), out, KEY_PATH, context=context, client=keys, chunk_size=chunk)
    return out.getvalue()


def open_(keys: LocalKeys, envelope: bytes, context: Optional[Mapping[str, str]] = CONTEXT, key_path: Optional[str] = None) -> bytes:
    out = io.BytesIO()
    crypto.decrypt_stream(io.BytesIO(envelope), out, context=context, key_path=key_path, client=keys)
    return out.getvalue()


def header_length(envelope: bytes) -> int:
    return struct.unpack(">I", envelope[6:10])[0]


def chunks(envelope: bytes) -> List[bytes]:
    h = header_length(envelope)
    return [envelope[i:i + CHUNK + 16] for i in range(h, len(envelope), CHUNK + 16)]


def splice(envelope: bytes, order: List[int]) -> bytes:
    parts = chunks(envelope)
    return envelope[:header_length(envelope)] + b"".join(parts[i] for i in order)


@pytest.fixture()
def keys() -> LocalKeys:
    return LocalKeys()


@pytest.fixture()
def data() -> bytes:
    return os.urandom(4 * CHUNK + 100)  # chunks 0..3 full, chunk 4 short


@pytest.mark.parametrize("length", [0, 1, CHUNK - 1, CHUNK, CHUNK + 1, 3 * CHUNK, 3 * CHUNK + 17])
def test_round_trips_every_length_around_chunk_boundaries(keys: LocalKeys, length: int) -> None:
    data = os.urandom(length)
    envelope = seal(keys, data)
    assert open_(keys, envelope) == data
    assert len(envelope) == header_length(envelope) + length + 16 * max(1, -(-length // CHUNK))


def test_header_layout_is_as_documented(keys: LocalKeys) -> None:
    envelope = seal(keys, b"abc", context={"b": "2", "a": "1"})
    assert envelope[:6] == b"SBEF\x01\x01"
    assert struct.unpack(">I", envelope[10:14])[0] == CHUNK
    assert envelope[53:55 + len(KEY_PATH)] == struct.pack(">H", len(KEY_PATH)) + KEY_PATH.encode()
    header = crypto.read_header(io.BytesIO(envelope))
    assert (header.key_path, header.key_version, header.chunk_size, header.context) == (KEY_PATH, "1", CHUNK, [("a", "1"), ("b", "2")])
    ctx = 55 + len(KEY_PATH) + 3 + 2 + len(header.wrapped_key)
    assert envelope[ctx:ctx + 14] == b"\x00\x02\x00\x01a\x00\x011\x00\x01b\x00\x012"
    assert header_length(envelope) == ctx + 14 + 32


def test_works_on_a_torch_save_style_buffer(keys: LocalKeys) -> None:
    buffer = io.BytesIO()
    buffer.write(b"PK\x03\x04 fake checkpoint " * 1000)
    buffer.seek(0)
    sealed = io.BytesIO()
    crypto.encrypt_stream(buffer, sealed, KEY_PATH, context=CONTEXT, client=keys, chunk_size=CHUNK)
    sealed.seek(0)
    restored = io.BytesIO()
    crypto.decrypt_stream(sealed, restored, context=CONTEXT, client=keys)
    assert restored.getvalue() == buffer.getvalue()


def test_a_flipped_bit_anywhere_is_detected(keys: LocalKeys, data: bytes) -> None:
    envelope = seal(keys, data)
    h = header_length(envelope)
    key_store_fields = range(53, 55 + len(KEY_PATH) + 3 + 2 + 60)  # key path and wrapped key go to the key store
    positions = list(range(h)) + [p for i in range(5) for p in (h + i * (CHUNK + 16), h + i * (CHUNK + 16) + 1000)] + [len(envelope) - 1]
    for position in (p for p in positions if p < len(envelope)):
        tampered = bytearray(envelope)
        tampered[position] ^= 0x01
        out = io.BytesIO()
        with pytest.raises((crypto.EnvelopeError, InvalidTag)) as raised:
            crypto.decrypt_stream(io.BytesIO(bytes(tampered)), out, context=CONTEXT, client=keys)
        if isinstance(raised.value, InvalidTag):
            assert position in key_store_fields, position
        if position >= h:
            chunk = (position - h) // (CHUNK + 16)
            assert isinstance(raised.value, crypto.ChunkAuthenticationError)
            assert f"chunk {chunk} failed authentication" in str(raised.value)
            assert len(out.getvalue()) == chunk * CHUNK  # only authenticated chunks were released


def test_an_edited_header_fails_the_key_commitment(keys: LocalKeys, data: bytes) -> None:
    tampered = bytearray(seal(keys, data))
    tampered[20] ^= 1  # salt
    with pytest.raises(crypto.WrongKeyError, match="wrong data key or modified header"):
        open_(keys, bytes(tampered))


def test_truncation_at_every_chunk_boundary(keys: LocalKeys, data: bytes) -> None:
    envelope = seal(keys, data)
    for kept in range(1, 5):
        with pytest.raises(crypto.EnvelopeTruncatedError, match=f"ends after chunk {kept - 1}, before its last chunk"):
            open_(keys, splice(envelope, list(range(kept))))
    with pytest.raises(crypto.EnvelopeTruncatedError):
        open_(keys, envelope[:header_length(envelope)])
    with pytest.raises(crypto.EnvelopeTruncatedError, match="ends inside its header"):
        open_(keys, envelope[:40])
    with pytest.raises(crypto.EnvelopeTruncatedError, match="inside chunk 2"):
        open_(keys, envelope[:header_length(envelope) + 2 * (CHUNK + 16) + 10])
    with pytest.raises(crypto.ChunkAuthenticationError):
        open_(keys, envelope[:-1])


@pytest.mark.parametrize("order,failing", [
    ([0, 2, 1, 3, 4], 1),      # reordered
    ([0, 1, 1, 2, 3, 4], 2),   # duplicated
    ([0, 1, 3, 4], 2),         # dropped
    ([1, 2, 3, 4], 0),         # first dropped
    ([0, 1, 2, 3, 4, 4], 4),   # last repeated
])
def test_reordered_duplicated_dropped_chunks(keys: LocalKeys, data: bytes, order: List[int], failing: int) -> None:
    with pytest.raises(crypto.ChunkAuthenticationError, match=f"chunk {failing} failed authentication"):
        open_(keys, splice(seal(keys, data), order))


def test_appended_bytes_are_detected(keys: LocalKeys, data: bytes) -> None:
    with pytest.raises(crypto.ChunkAuthenticationError):
        open_(keys, seal(keys, data) + b"\x00")
    with pytest.raises(crypto.ChunkAuthenticationError):
        open_(keys, seal(keys, bytes(2 * CHUNK)) + bytes(16))


def test_a_swapped_header_fails_the_first_chunk(keys: LocalKeys, data: bytes) -> None:
    first, second = seal(keys, data), seal(keys, data)
    with pytest.raises(crypto.ChunkAuthenticationError, match="chunk 0 failed authentication"):
        open_(keys, first[:header_length(first)] + second[header_length(second):])


def test_another_files_wrapped_key_is_the_wrong_key(keys: LocalKeys, data: bytes) -> None:
    first, second = bytearray(seal(keys, data)), seal(keys, data)
    start = 55 + len(KEY_PATH) + 3 + 2
    first[start:start + 60] = second[start:start + 60]
    with pytest.raises(crypto.WrongKeyError):
        open_(keys, bytes(first))


def test_a_wrong_data_key_is_the_wrong_key(keys: LocalKeys, data: bytes) -> None:
    out = io.BytesIO()
    with pytest.raises(crypto.WrongKeyError):
        crypto.decrypt_stream_with_key(io.BytesIO(seal(keys, data)), out, os.urandom(32), context=CONTEXT)
    assert out.getvalue() == b""


def test_other_key_stores_cannot_unwrap(keys: LocalKeys, data: bytes) -> None:
    with pytest.raises(InvalidTag):
        open_(LocalKeys(), seal(keys, data))


@pytest.mark.parametrize("wrong", [{}, {"model": "resnet-fake"}, {"model": "other", "stage": "train"}, None])
def test_a_wrong_context_is_refused_before_unwrapping(keys: LocalKeys, wrong: Optional[Dict[str, str]]) -> None:
    envelope = seal(keys, b"abc")
    with pytest.raises(crypto.ContextMismatchError) as raised:
        open_(keys, envelope, context=wrong)
    assert "resnet-fake" not in str(raised.value)
    assert keys.unwraps == 0


def test_an_expected_key_path_must_match(keys: LocalKeys) -> None:
    envelope = seal(keys, b"abc")
    with pytest.raises(crypto.KeyPathMismatchError):
        open_(keys, envelope, key_path="local/serving")
    assert open_(keys, envelope, key_path=KEY_PATH) == b"abc"


@pytest.mark.parametrize("content", [b"", b"PK\x03\x04", b"SBEF\x02\x01\x00\x00\x00\x64" + bytes(100)])
def test_foreign_files_are_format_errors(keys: LocalKeys, content: bytes) -> None:
    with pytest.raises(crypto.EnvelopeFormatError):
        open_(keys, content)


def test_decrypt_file_publishes_only_a_fully_authenticated_file(keys: LocalKeys, tmp_path) -> None:
    plain = os.urandom(3 * CHUNK + 5)
    (tmp_path / "model.bin").write_bytes(plain)
    crypto.encrypt_file(tmp_path / "model.bin", tmp_path / "model.sbef", KEY_PATH, context=CONTEXT, client=keys, chunk_size=CHUNK)
    crypto.decrypt_file(tmp_path / "model.sbef", tmp_path / "restored.bin", context=CONTEXT, client=keys)
    assert (tmp_path / "restored.bin").read_bytes() == plain
    assert (tmp_path / "restored.bin").stat().st_mode & 0o777 == 0o600

    tampered = bytearray((tmp_path / "model.sbef").read_bytes())
    tampered[-1] ^= 1  # the last chunk: three chunks authenticate first
    (tmp_path / "model.sbef").write_bytes(bytes(tampered))
    (tmp_path / "restored.bin").write_bytes(b"previous content")
    with pytest.raises(crypto.ChunkAuthenticationError, match="chunk 3"):
        crypto.decrypt_file(tmp_path / "model.sbef", tmp_path / "restored.bin", context=CONTEXT, client=keys)
    assert (tmp_path / "restored.bin").read_bytes() == b"previous content"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.bin", "model.sbef", "restored.bin"]


class Zeros(io.RawIOBase):
    """``size`` zero bytes, produced on demand."""

    def __init__(self, size: int) -> None:
        self.left = size

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:  # type: ignore[no-untyped-def]
        n = min(len(buffer), self.left)
        buffer[:n] = bytes(n)
        self.left -= n
        return n


class Sink(io.RawIOBase):
    def __init__(self) -> None:
        self.count = 0

    def writable(self) -> bool:
        return True

    def write(self, b) -> int:  # type: ignore[no-untyped-def]
        self.count += len(b)
        return len(b)


def test_memory_is_a_few_chunks_whatever_the_size(keys: LocalKeys, tmp_path) -> None:
    size, chunk = 64 << 20, 256 << 10
    path = tmp_path / "zeros.sbef"
    tracemalloc.start()
    try:
        with open(path, "wb") as out:
            crypto.encrypt_stream(io.BufferedReader(Zeros(size)), out, KEY_PATH, context=CONTEXT, client=keys, chunk_size=chunk)
        _, encrypt_peak = tracemalloc.get_traced_memory()
        tracemalloc.reset_peak()
        sink = Sink()
        with open(path, "rb") as src:
            crypto.decrypt_stream(src, sink, context=CONTEXT, client=keys)
        _, decrypt_peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert sink.count == size
    assert encrypt_peak < 6 * chunk, encrypt_peak  # the data is 256 chunks
    assert decrypt_peak < 6 * chunk, decrypt_peak


def test_chunks_are_read_into_reused_buffers_not_copied(keys: LocalKeys) -> None:
    # Issue #20 (speed): chunks are read (readinto) into a preallocated buffer and sealed or opened from there into
    # one reused output buffer: two chunk buffers, no per-chunk copies (before: the chunk, the next one read ahead,
    # and fresh bytes for every result).
    size, chunk = 16 << 20, 256 << 10
    zeros = memoryview(bytes(chunk))

    class Zeros(io.RawIOBase):  # unlike the module's, allocates nothing per read
        def __init__(self, left: int) -> None:
            self.left = left

        def readable(self) -> bool:
            return True

        def readinto(self, buffer) -> int:  # type: ignore[no-untyped-def]
            n = min(len(buffer), self.left, chunk)
            buffer[:n] = zeros[:n]
            self.left -= n
            return n

    sealed = io.BytesIO()
    crypto.encrypt_stream(Zeros(size), sealed, KEY_PATH, context=CONTEXT, client=keys, chunk_size=chunk)
    source = io.BytesIO(sealed.getvalue())
    tracemalloc.start()
    try:
        crypto.encrypt_stream(Zeros(size), Sink(), KEY_PATH, context=CONTEXT, client=keys, chunk_size=chunk)
        _, encrypt_peak = tracemalloc.get_traced_memory()
        tracemalloc.reset_peak()
        sink = Sink()
        crypto.decrypt_stream(source, sink, context=CONTEXT, client=keys)
        _, decrypt_peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert sink.count == size
    assert encrypt_peak < 2.5 * chunk, encrypt_peak
    assert decrypt_peak < 2.5 * chunk, decrypt_peak


def test_a_reader_without_readinto_and_one_returning_a_few_bytes_per_read_round_trip(keys: LocalKeys) -> None:
    class ReadOnly:
        def __init__(self, data: bytes, most: int) -> None:
            self.data, self.most = io.BytesIO(data), most

        def read(self, n: int = -1) -> bytes:
            return self.data.read(min(n, self.most))

    data = os.urandom(3 * CHUNK + 100)
    out = io.BytesIO()
    crypto.encrypt_stream(ReadOnly(data, 997), out, KEY_PATH, context=CONTEXT, client=keys, chunk_size=CHUNK)
    restored = io.BytesIO()
    crypto.decrypt_stream(ReadOnly(out.getvalue(), 1001), restored, context=CONTEXT, client=keys)
    assert restored.getvalue() == data


@pytest.mark.parametrize("original,edited", [(b"train", b"trail"), (KEY_PATH.encode(), KEY_PATH.encode()[:-1] + b"X")])
def test_a_header_edited_to_another_context_or_key_path_fails_even_with_the_right_data_key(keys: LocalKeys, original: bytes, edited: bytes) -> None:
    # With the data key in hand (a key store that does not bind context or path), the header is still bound to the chunks.
    data_key = keys.generate_data_key(KEY_PATH, context=CONTEXT)
    out = io.BytesIO()
    crypto.encrypt_stream_with_key(io.BytesIO(b"abc"), out, data_key, context=CONTEXT, chunk_size=CHUNK)
    envelope = out.getvalue()
    h = header_length(envelope)
    tampered = envelope[:h].replace(original, edited) + envelope[h:]
    header = crypto.read_header(io.BytesIO(tampered))
    with pytest.raises(crypto.WrongKeyError):
        crypto.decrypt_stream_with_key(io.BytesIO(tampered), io.BytesIO(), data_key.plaintext_key, context=dict(header.context))
