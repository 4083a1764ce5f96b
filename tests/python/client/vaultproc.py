"""The Vault emulator (tests/VaultEmulator) as a process, and helpers for the lease and watch tests.

The emulator runs from its Release build on a 127.0.0.1 port it picks itself (port 0, read from its log) with a seed file: KV secret
``app/db`` (versions 1 and 2) on engine ``secret`` and database roles with short TTLs. Tests talk to
it over its HTTP API the way another Vault client would (root token), and read its view of leases
from ``GET /__emulator/leases``. A :class:`TcpProxy` stands between a client and the broker so a test
can cut every connection, as a network failure or a load balancer would. Every value here is fake.
"""

from __future__ import annotations

import json
import os
import pathlib
import select
import signal
import socket
import subprocess
import threading
import time
import urllib.request
from dataclasses import dataclass
from typing import Any, Callable, Dict, List, Optional

from brokerproc import REPO_ROOT, built_dll, wait_for_listening_port

EMULATOR_PROJECT = REPO_ROOT / "tests" / "VaultEmulator"
EMULATOR_DLL = EMULATOR_PROJECT / "bin" / "Release" / "net10.0" / "SecretsBroker.VaultEmulator.dll"

ROOT_TOKEN = "FAKE-py-vault-root-token"

#: Role ``short``: TTL 4 s, max TTL 12 s (renewed until the max TTL caps it, then rotated). Role ``steady``: TTL 3 s,
#: max TTL 1 h. The broker renews at a third of the TTL (see :func:`lease_broker_settings`), leaving two thirds
#: (2.6 s and 2 s) of slack for a renewal that starts late on a loaded machine.
SEED: Dict[str, Any] = {
    "kv": {
        "secret": {
            "app/db": [{"password": "FAKE-watch-v1"}, {"password": "FAKE-watch-v2"}],
            # For examples/trainer.py with --db-role: connection fields only, the login comes from a lease.
            "ml/training-db": {"host": "postgres.test.invalid", "port": "5432", "database": "training"},
            "ml/checkpoint-bucket": {
                "endpoint": "https://storage.test.invalid",
                "access_key_id": "AKIAFAKEFAKEFAKEFAKE",
                "secret_access_key": "FAKE/secret/access/key/not/real",
            },
        }
    },
    "database": {
        "roles": {
            "short": {"default_ttl": "4s", "max_ttl": "12s"},
            "steady": {"default_ttl": "3s", "max_ttl": "1h"},
        }
    },
}


def wait_until(condition: Callable[[], Any], timeout: float, what: str, interval: float = 0.05) -> Any:
    """Polls ``condition`` until it returns something truthy (returned), failing after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g}s waiting for: {what}")
        time.sleep(interval)


def emulator_dll() -> pathlib.Path:
    """The emulator dll: $SECRETSBROKER_VAULT_EMULATOR_DLL, or the Release build (built here once if missing)."""
    return built_dll(EMULATOR_PROJECT, EMULATOR_DLL, "SECRETSBROKER_VAULT_EMULATOR_DLL", "the Vault emulator")


@dataclass
class VaultEmulator:
    """A running emulator; ``address`` is ``http://127.0.0.1:<port>``."""

    process: subprocess.Popen
    log_path: pathlib.Path
    port: int = 0

    @property
    def address(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def log(self) -> str:
        try:
            return self.log_path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return ""

    def request(self, method: str, path: str, body: Optional[Dict[str, Any]] = None) -> Dict[str, Any]:
        """One HTTP call with the root token; returns the JSON body ({} when empty)."""
        data = json.dumps(body).encode("utf-8") if body is not None else None
        request = urllib.request.Request(self.address + path, data=data, method=method)
        request.add_header("X-Vault-Token", ROOT_TOKEN)
        if data is not None:
            request.add_header("Content-Type", "application/json")
        with urllib.request.urlopen(request, timeout=10) as response:
            text = response.read().decode("utf-8")
        return json.loads(text) if text.strip() else {}

    def write_kv(self, name: str, data: Dict[str, str], engine: str = "secret") -> int:
        """Writes a new KV v2 version of ``name`` (as any Vault client would); returns its version number."""
        return int(self.request("POST", f"/v1/{engine}/data/{name}", {"data": data})["data"]["version"])

    def leases(self) -> Dict[str, Dict[str, Any]]:
        """The emulator's leases by id: ``live``, ``revoked``, ``credential``, ``expire_time``."""
        return {lease["lease_id"]: lease for lease in self.request("GET", "/__emulator/leases")["leases"]}

    def lease_state(self, lease_id: str) -> Optional[tuple]:
        """(live, revoked) for one lease, or None when the emulator does not know it."""
        lease = self.leases().get(lease_id)
        return None if lease is None else (lease["live"], lease["revoked"])

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=5)


def start_vault_emulator(root: pathlib.Path, seed: Dict[str, Any] = SEED, startup_timeout: float = 60.0) -> VaultEmulator:
    """Starts the emulator on port 0 and returns once it says which port it listens on."""
    dll = emulator_dll()
    root.mkdir(parents=True, exist_ok=True)
    seed_file = root / "seed.json"
    seed_file.write_text(json.dumps(seed), encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ASPNETCORE_", "DOTNET_ENVIRONMENT", "Kestrel__"))}
    env.update({"DOTNET_NOLOGO": "1", "DOTNET_CLI_TELEMETRY_OPTOUT": "1", "Logging__LogLevel__Default": "Warning"})
    log_path = root / "emulator.log"
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            ["dotnet", str(dll), "--urls", "http://127.0.0.1:0", "--root-token", ROOT_TOKEN, "--seed", str(seed_file)],
            cwd=root,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    emulator = VaultEmulator(process=process, log_path=log_path)
    try:
        emulator.port = wait_for_listening_port(emulator.log, "vault emulator listening on", process, startup_timeout, "the Vault emulator")
    except RuntimeError:
        emulator.stop()
        raise
    return emulator


def lease_broker_settings(vault: VaultEmulator, grace: str = "00:00:05") -> Dict[str, str]:
    """Broker environment for the lease tests, as tests/Broker.Tests/Leases/LeaseTestEnvironment.cs sets it:
    a token login to the emulator, renewal at a third of the TTL without jitter, a short rotation overlap and
    fast watch polling."""
    return {
        "Broker__Vault__Connections__default__Address": vault.address,
        "Broker__Vault__Connections__default__Auth__Method": "token",
        "Broker__Vault__Connections__default__Auth__Token": ROOT_TOKEN,
        "Broker__Vault__Connections__default__MaxRetries": "3",
        "Broker__Vault__Connections__default__RetryBaseDelay": "00:00:00.010",
        "Broker__Vault__Connections__default__RetryMaxDelay": "00:00:00.050",
        "Broker__RateLimits__Enabled": "false",
        "Broker__Leases__RenewJitter": "0",
        "Broker__Leases__RenewAtFraction": "0.34",
        "Broker__Leases__RotationOverlap": "00:00:00.500",
        "Broker__Leases__GracePeriod": grace,
        "Broker__Leases__SweepInterval": "00:00:00.100",
        "Broker__Leases__RetryDelay": "00:00:00.200",
        "Broker__Watch__PollInterval": "00:00:00.200",
    }


#: Mount ``vault`` (KV on the emulator's ``secret`` engine, cached for 10 minutes, so a read after an
#: event proves the broker dropped its cache) and mount ``db`` (database credentials).
LEASE_MOUNTS: List[Dict[str, str]] = [
    {"Prefix": "vault", "Type": "vault-kv", "Connection": "default", "EnginePath": "secret", "Cache__Enabled": "true", "Cache__Ttl": "00:10:00"},
    {"Prefix": "db", "Type": "vault-dynamic", "Connection": "default", "Engine": "database"},
]


class TcpProxy:
    """A loopback TCP proxy to ``target_port``; :meth:`drop_all` cuts every open connection at once."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self._listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._listener.bind(("127.0.0.1", 0))
        self._listener.listen(16)
        self.port: int = self._listener.getsockname()[1]
        self._lock = threading.Lock()
        self._sockets: List[socket.socket] = []
        self._closed = False
        self.accepted = 0
        threading.Thread(target=self._accept, name="tcp-proxy-accept", daemon=True).start()

    @property
    def target(self) -> str:
        return f"127.0.0.1:{self.port}"

    def _accept(self) -> None:
        while True:
            try:
                downstream, _ = self._listener.accept()
            except OSError:
                return
            try:
                upstream = socket.create_connection(("127.0.0.1", self.target_port), timeout=5)
                upstream.settimeout(None)
            except OSError:
                downstream.close()
                continue
            with self._lock:
                if self._closed:
                    downstream.close()
                    upstream.close()
                    return
                self._sockets += [downstream, upstream]
                self.accepted += 1
            threading.Thread(target=self._pump, args=(downstream, upstream), name="tcp-proxy-pump", daemon=True).start()

    def _pump(self, a: socket.socket, b: socket.socket) -> None:
        peers = {a: b, b: a}
        try:
            while True:
                readable, _, _ = select.select([a, b], [], [], 0.5)
                for sock in readable:
                    data = sock.recv(65536)
                    if not data:
                        return
                    peers[sock].sendall(data)
        except (OSError, ValueError):
            return
        finally:
            for sock in (a, b):
                _close(sock)

    def drop_all(self) -> None:
        """Resets every open connection (new connections are still accepted)."""
        with self._lock:
            sockets, self._sockets = self._sockets, []
        for sock in sockets:
            _close(sock)

    def close(self) -> None:
        with self._lock:
            self._closed = True
        _close(self._listener)
        self.drop_all()


def _close(sock: socket.socket) -> None:
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
    try:
        sock.close()
    except OSError:
        pass
