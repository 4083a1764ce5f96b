#!/usr/bin/env python3
"""Envelope file throughput of secretsbroker.crypto against raw AESGCM over the same chunk size, in one run,
and flat memory on a multi-GB stream (docs/benchmarks.md, Envelope files). Data keys are made in-process:
the broker is not what is measured.

    /usr/bin/python3 tests/Benchmarks/envelope_python.py [--mib 1024] [--flat-gib 4] [--chunk 1048576] [--rounds 3]
"""

from __future__ import annotations

import argparse
import io
import os
import resource
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "clients", "python", "src"))

from cryptography.hazmat.primitives.ciphers.aead import AESGCM  # noqa: E402

from secretsbroker import crypto  # noqa: E402
from secretsbroker.crypto import DataKey  # noqa: E402

CONTEXT = {"model": "bench-fake"}


class Zeros(io.RawIOBase):
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


def raw(total: int, chunk: int, decrypt: bool) -> float:
    aead = AESGCM(AESGCM.generate_key(256))
    plaintext = bytes(chunk)
    nonce = bytearray(12)
    sealed = aead.encrypt(bytes(nonce), plaintext, None)
    start = time.perf_counter()
    for _ in range(total // chunk):
        if decrypt:
            aead.decrypt(bytes(nonce), sealed, None)
        else:
            nonce[7] = (nonce[7] + 1) & 0xFF
            aead.encrypt(bytes(nonce), plaintext, None)
    return time.perf_counter() - start


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--mib", type=int, default=1024)
    parser.add_argument("--flat-gib", type=float, default=4)
    parser.add_argument("--chunk", type=int, default=crypto.DEFAULT_CHUNK_SIZE)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    chunk = args.chunk
    total = (args.mib << 20) // chunk * chunk
    data_key = DataKey(os.urandom(32), os.urandom(60), "local/bench", "1")
    print(f"python envelope benchmark: {total >> 20} MiB per run, chunk {chunk}, best of {args.rounds}; "
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
    repeats = max(1, total // sample_size)

    def envelope_encrypt() -> float:
        start = time.perf_counter()
        crypto.encrypt_stream_with_key(io.BufferedReader(Zeros(total), buffer_size=chunk), Sink(), data_key, context=CONTEXT, chunk_size=chunk)
        return time.perf_counter() - start

    def envelope_decrypt() -> float:
        start = time.perf_counter()
        for _ in range(repeats):
            crypto.decrypt_stream_with_key(io.BytesIO(sealed_bytes), Sink(), data_key.plaintext_key, context=CONTEXT)
        return time.perf_counter() - start

    for what, raw_time, file_time, size in [
        ("encrypt", min(raw(total, chunk, False) for _ in range(args.rounds)), min(envelope_encrypt() for _ in range(args.rounds)), total),
        ("decrypt", min(raw(sample_size * repeats, chunk, True) for _ in range(args.rounds)), min(envelope_decrypt() for _ in range(args.rounds)), sample_size * repeats),
    ]:
        mib = size / (1 << 20)
        print(f"{what}: raw AESGCM {mib / raw_time:.0f} MiB/s, envelope stream {mib / file_time:.0f} MiB/s, ratio {raw_time / file_time:.2f}x")

    return 0 if sink.count == flat else 1


if __name__ == "__main__":
    sys.exit(main())
