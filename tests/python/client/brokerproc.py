"""Starts a real SecretsBroker process (the built Release dll) for the Python client tests.

The broker runs with ASPNETCORE_ENVIRONMENT=Development (dev tokens are allowed there), a temporary
content root (so the repository's appsettings*.json and demo mount are not loaded) and its whole
configuration as environment variables, listening with HTTP/2 only on a 127.0.0.1 port it picks itself
(port 0) and reports in its log, so no port is chosen for it in advance that another process could take.
"""

from __future__ import annotations

import hashlib
import contextlib
import os
import pathlib
import re
import signal
import socket
import subprocess
import time
from dataclasses import dataclass, field
from typing import Callable, Dict, Iterator, List, Optional

REPO_ROOT = pathlib.Path(__file__).resolve().parents[3]
BROKER_PROJECT = REPO_ROOT / "services" / "Broker"
BROKER_DLL = BROKER_PROJECT / "bin" / "Release" / "net10.0" / "SecretsBroker.Broker.dll"


def sha256_hex(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


@contextlib.contextmanager
def closed_port() -> Iterator[int]:
    """A loopback port where nothing listens, for "unreachable" tests: bound without listening, so
    connections to it are refused and no other process can start listening on it while the block runs."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        yield sock.getsockname()[1]


_LISTENING_URL = re.compile(r"https?://[0-9.]+:([0-9]+)")


def wait_for_listening_port(
    log: Callable[[], str], marker: str, process: subprocess.Popen, timeout: float, what: str
) -> int:
    """The port a child started on port 0 reports: the first log line with ``marker`` and an address on it
    (Kestrel: ``Now listening on: http://127.0.0.1:40123``). Fails when the child exits first or takes too long."""
    deadline = time.monotonic() + timeout
    while True:
        for line in log().splitlines():
            if marker in line:
                match = _LISTENING_URL.search(line)
                if match:
                    return int(match.group(1))
        if process.poll() is not None:
            raise RuntimeError(f"{what} exited with code {process.returncode} before listening; its log:\n{log()}")
        if time.monotonic() > deadline:
            raise RuntimeError(f"{what} did not listen within {timeout:g}s; its log:\n{log()}")
        time.sleep(0.05)


def built_dll(project: pathlib.Path, dll: pathlib.Path, override_variable: str, what: str) -> pathlib.Path:
    """A project's Release dll: ``$override_variable`` when set, else its build output (built here once if missing)."""
    override = os.environ.get(override_variable)
    if override:
        return pathlib.Path(override)
    if not dll.exists():
        result = subprocess.run(
            ["dotnet", "build", str(project), "-c", "Release", "-nologo", "-v", "quiet"],
            cwd=REPO_ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        if result.returncode != 0 or not dll.exists():
            raise RuntimeError(f"dotnet build of {what} failed (exit {result.returncode}):\n{result.stdout[-4000:]}")
    return dll


def broker_dll() -> pathlib.Path:
    """The broker dll: $SECRETSBROKER_BROKER_DLL, or the Release build (built here once if missing)."""
    return built_dll(BROKER_PROJECT, BROKER_DLL, "SECRETSBROKER_BROKER_DLL", "the broker")


@dataclass
class BrokerProcess:
    """A running broker; ``target`` is ``127.0.0.1:<port>`` (the port it reported once it listened)."""

    process: subprocess.Popen
    log_path: pathlib.Path
    port: int = 0
    scheme: str = "http"
    extra: Dict[str, str] = field(default_factory=dict)

    @property
    def target(self) -> str:
        return f"127.0.0.1:{self.port}"

    def log(self) -> str:
        try:
            return self.log_path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return ""

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=5)


def start_broker(
    content_root: pathlib.Path,
    mounts: List[Dict[str, str]],
    tokens: Dict[str, str],
    extra_env: Optional[Dict[str, str]] = None,
    scheme: str = "http",
    startup_timeout: float = 60.0,
    policy: Optional[str] = None,
) -> BrokerProcess:
    """Starts the broker on port 0 and returns once it says which port it listens on.

    ``mounts``: list of mount sections (Prefix, Type, File ...; nested keys as ``Cache__Ttl``).
    ``tokens``: subject -> plaintext dev token (only its SHA-256 is configured). ``policy``: the policy
    file's YAML, instead of the default (read and list everywhere except ``*/restricted/**``).
    """
    dll = broker_dll()
    content_root.mkdir(parents=True, exist_ok=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("Broker__", "Kestrel__", "ASPNETCORE_", "DOTNET_ENVIRONMENT"))}
    env.update(
        {
            "ASPNETCORE_ENVIRONMENT": "Development",
            "DOTNET_NOLOGO": "1",
            "DOTNET_CLI_TELEMETRY_OPTOUT": "1",
            "Kestrel__EndpointDefaults__Protocols": "Http2",
            "Logging__LogLevel__Default": "Information",
            "Logging__LogLevel__Microsoft.AspNetCore": "Warning",
        }
    )
    for i, mount in enumerate(mounts):
        for key, value in mount.items():
            env[f"Broker__Mounts__{i}__{key}"] = value
    for i, (subject, token) in enumerate(tokens.items()):
        env[f"Broker__Auth__DevTokens__Tokens__{i}__Subject"] = subject
        env[f"Broker__Auth__DevTokens__Tokens__{i}__Sha256"] = sha256_hex(token)
    # The broker denies by default: every token's subject may read and list everything except
    # paths under a `restricted` folder, which exercise PERMISSION_DENIED.
    policy_file = content_root / "policy.yaml"
    policy_file.write_text(
        policy
        if policy is not None
        else "policies:\n"
        "  - name: python-tests\n"
        f"    appliesTo: {{ subjects: [{', '.join(tokens)}] }}\n"
        "    rules:\n"
        "      - paths: ['**']\n"
        "        capabilities: [read, list]\n"
        "      - paths: ['*/restricted/**']\n"
        "        capabilities: [read, list]\n"
        "        effect: deny\n",
        encoding="utf-8",
    )
    env["Broker__Policy__File"] = str(policy_file)
    # Metrics and HTTP health on a port of their own, chosen by the OS, so parallel brokers never collide.
    env["Broker__Management__Urls"] = "http://127.0.0.1:0"
    # Audit events need the deployment key; without Redis they stay in the content root's spool.
    env["Broker__Audit__Key"] = "RkFLRS1weXRlc3QtYXVkaXQta2V5LTMyLWJ5dGVzISE="
    env.update(extra_env or {})

    log_path = content_root / "broker.log"
    log = open(log_path, "wb")
    try:
        process = subprocess.Popen(
            ["dotnet", str(dll), "--urls", f"{scheme}://127.0.0.1:0", "--contentRoot", str(content_root)],
            cwd=content_root,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    finally:
        log.close()
    broker = BrokerProcess(process=process, log_path=log_path, scheme=scheme)
    try:
        # Kestrel's own line is the gRPC port's alone (the management server logs "Management server listening").
        broker.port = wait_for_listening_port(broker.log, "Now listening on", process, startup_timeout, "the broker")
    except RuntimeError:
        broker.stop()
        raise
    return broker
