"""Starts a real SecretsBroker process (the built Release dll) for the Python client tests.

The broker runs with ASPNETCORE_ENVIRONMENT=Development (dev tokens are allowed there), a temporary
content root (so the repository's appsettings*.json and demo mount are not loaded) and its whole
configuration as environment variables, listening on a free 127.0.0.1 port with HTTP/2 only.
"""

from __future__ import annotations

import hashlib
import os
import pathlib
import signal
import socket
import subprocess
import time
from dataclasses import dataclass, field
from typing import Dict, List, Optional

REPO_ROOT = pathlib.Path(__file__).resolve().parents[3]
BROKER_PROJECT = REPO_ROOT / "services" / "Broker"
BROKER_DLL = BROKER_PROJECT / "bin" / "Release" / "net10.0" / "SecretsBroker.Broker.dll"


def sha256_hex(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


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
    """A running broker; ``target`` is ``127.0.0.1:<port>``."""

    process: subprocess.Popen
    port: int
    log_path: pathlib.Path
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
    """Starts the broker and returns once its port accepts connections.

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

    port = free_port()
    log_path = content_root / "broker.log"
    log = open(log_path, "wb")
    try:
        process = subprocess.Popen(
            ["dotnet", str(dll), "--urls", f"{scheme}://127.0.0.1:{port}", "--contentRoot", str(content_root)],
            cwd=content_root,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    finally:
        log.close()
    broker = BrokerProcess(process=process, port=port, log_path=log_path, scheme=scheme)

    deadline = time.monotonic() + startup_timeout
    while True:
        if process.poll() is not None:
            raise RuntimeError(f"the broker exited with code {process.returncode} before listening; its log:\n{broker.log()}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return broker
        except OSError:
            if time.monotonic() > deadline:
                broker.stop()
                raise RuntimeError(f"the broker did not listen on port {port} within {startup_timeout}s; its log:\n{broker.log()}")
            time.sleep(0.05)
