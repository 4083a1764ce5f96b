#!/usr/bin/env python3
"""Envelope file throughput of secretsbroker.crypto against raw AESGCM over the same chunk size, in one run,
and flat memory on a multi-GB stream (docs/benchmarks.md, Envelope files). Data keys are made in-process:
the broker is not what is measured.

    /usr/bin/python3 tests/Benchmarks/envelope_python.py [--mib 1024] [--flat-gib 4] [--chunk 1048576] [--rounds 5]

Raw and envelope alternate 64 MiB at a time within each round, both reading from the same kind of stream and
writing to the same sink; the ratio is the median of the rounds'. The raw baseline is cryptography's AESGCM used
the plain way (read a chunk, encrypt/decrypt it, write the result); "raw update_into" is raw AES-GCM through the
Cipher API into reused buffers, the way the envelope code does it, for reference.
"""

from __future__ import annotations

import argparse
import io
import os
import resource
import statistics
import struct
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "clients", "python", "src"))

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes  # noqa: E402
from cryptography.hazmat.primitives.ciphers.aead import AESGCM  # noqa: E402

from secretsbroker import crypto  # noqa: E402
from secretsbroker.crypto import DataKey  # noqa: E402

CONTEXT = {"model": "bench-fake"}


_ZEROS = memoryview(bytes(16 << 20))


class Zeros(io.RawIOBase):
    """``size`` zero bytes, copied from one preallocated block (nothing allocated per read)."""

    def __init__(self, size: int) -> None:
        self.left = size

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:  # type: ignore[no-untyped-def]
        n = min(len(buffer), self.left, len(_ZEROS))
        buffer[:n] = _ZEROS[:n]
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


def _nonce(index: int) -> bytes:
    return bytes(7) + struct.pack(">IB", index, 0)


def raw_encrypt(reader, writer, key: bytes, chunk: int) -> None:  # type: ignore[no-untyped-def]
    """Plain AESGCM: read a chunk, encrypt it, write the sealed chunk."""
    aead = AESGCM(key)
    index = 0
    while True:
        data = reader.read(chunk)
        if not data:
            return
        writer.write(aead.encrypt(_nonce(index), data, None))
        index += 1


def raw_decrypt(reader, writer, key: bytes, chunk: int) -> None:  # type: ignore[no-untyped-def]
    """Plain AESGCM: read a sealed chunk, decrypt it, write the plaintext."""
    aead = AESGCM(key)
    index = 0
    while True:
        data = reader.read(chunk + 16)
        if not data:
            return
        writer.write(aead.decrypt(_nonce(index), data, None))
        index += 1


def raw_decrypt_into(reader, writer, key: bytes, chunk: int) -> None:  # type: ignore[no-untyped-def]
    """Raw AES-GCM through the Cipher API into reused buffers (readinto, update_into): the envelope's way, no format."""
    aes = algorithms.AES(key)
    sealed = memoryview(bytearray(chunk + 16))
    plaintext = memoryview(bytearray(chunk + 15))
    index = 0
    while True:
        count = reader.readinto(sealed)
        if not count:
            return
        decryptor = Cipher(aes, modes.GCM(_nonce(index), bytes(sealed[count - 16:count]))).decryptor()
        decryptor.update_into(sealed[:count - 16], plaintext)
        decryptor.finalize()
        writer.write(plaintext[:count - 16])
        index += 1


def timed(action) -> float:  # type: ignore[no-untyped-def]
    start = time.perf_counter()
    action()
    return time.perf_counter() - start


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--mib", type=int, default=1024)
    parser.add_argument("--flat-gib", type=float, default=4)
    parser.add_argument("--chunk", type=int, default=crypto.DEFAULT_CHUNK_SIZE)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    chunk = args.chunk
    total = (args.mib << 20) // chunk * chunk
    data_key = DataKey(os.urandom(32), os.urandom(60), "local/bench", "1")
    print(f"python envelope benchmark: {total >> 20} MiB per run, chunk {chunk}, {args.rounds} rounds; "
          f"{os.cpu_count()} cores, loadavg {os.getloadavg()[0]:.1f}")

    # Flat memory first (ru_maxrss is the process's peak so far): a multi-GB file of zeros encrypted to disk and decrypted back.
    flat = int(args.flat_gib * (1 << 30)) // chunk * chunk
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    with tempfile.TemporaryDirectory() as directory:
        path = os.path.join(directory, "zeros.sbef")
        start = time.perf_counter()
        with open(path, "wb") as out:
            crypto.encrypt_stream_with_key(io.BufferedReader(Zeros(flat), buffer_size=chunk), out, data_key, context=CONTEXT, chunk_size=chunk)
        sink = Sink()
        with open(path, "rb") as src:
            crypto.decrypt_stream_with_key(src, sink, data_key.plaintext_key, context=CONTEXT)
        elapsed = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(f"flat memory: {flat >> 20} MiB encrypted to a file and decrypted back in {elapsed:.1f} s; plaintext out {sink.count >> 20} MiB; "
          f"peak RSS {peak >> 10} MiB (before {before >> 10} MiB)")

    sample_size = min(total, 64 << 20) // chunk * chunk
    sealed = io.BytesIO()
    crypto.encrypt_stream_with_key(Zeros(sample_size), sealed, data_key, context=CONTEXT, chunk_size=chunk)
    sealed_bytes = sealed.getvalue()
    raw_key = AESGCM.generate_key(256)
    raw_sealed = io.BytesIO()
    raw_encrypt(Zeros(sample_size), raw_sealed, raw_key, chunk)
    raw_bytes = raw_sealed.getvalue()
    repeats = max(1, total // sample_size)

    # Raw and envelope alternate 64 MiB at a time within each round, so both see the same machine.
    names = ["raw encrypt", "envelope encrypt", "raw decrypt", "envelope decrypt", "raw update_into decrypt"]
    rounds = []
    for round_number in range(args.rounds):
        times = [0.0] * len(names)
        for _ in range(repeats):
            times[0] += timed(lambda: raw_encrypt(Zeros(sample_size), Sink(), raw_key, chunk))
            times[1] += timed(lambda: crypto.encrypt_stream_with_key(Zeros(sample_size), Sink(), data_key, context=CONTEXT, chunk_size=chunk))
            times[2] += timed(lambda: raw_decrypt(io.BytesIO(raw_bytes), Sink(), raw_key, chunk))
            times[3] += timed(lambda: crypto.decrypt_stream_with_key(io.BytesIO(sealed_bytes), Sink(), data_key.plaintext_key, context=CONTEXT))
            times[4] += timed(lambda: raw_decrypt_into(io.BytesIO(raw_bytes), Sink(), raw_key, chunk))
        rounds.append(times)
        print(f"round {round_number + 1}: loadavg {os.getloadavg()[0]:.1f}")

    mib = sample_size * repeats / (1 << 20)
    for what, raw_at, file_at in [("encrypt", 0, 1), ("decrypt", 2, 3), ("decrypt against raw update_into (reference)", 4, 3)]:
        ratios = sorted(r[raw_at] / r[file_at] for r in rounds)
        print(f"{what}: raw {mib / min(r[raw_at] for r in rounds):.0f} MiB/s, envelope {mib / min(r[file_at] for r in rounds):.0f} MiB/s (best rounds); "
              f"ratio median {statistics.median(ratios):.2f}x (rounds: {', '.join(f'{x:.2f}' for x in ratios)})")

    return 0 if sink.count == flat else 1


if __name__ == "__main__":
    sys.exit(main())
