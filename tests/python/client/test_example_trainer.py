"""examples/trainer.py run as a training job would run it, against the real broker."""

from __future__ import annotations

import os
import pathlib
import queue
import re
import signal
import subprocess
import sys
import threading
from typing import List


from brokerproc import REPO_ROOT, BrokerProcess, closed_port
from testdata import MOUNT, WRONG_TOKEN
from vaultproc import VaultEmulator, wait_until

TRAINER = REPO_ROOT / "clients" / "python" / "examples" / "trainer.py"
SECRET_VALUES = ["FAKE-password-not-real", "FAKE/secret/access/key/not/real", "AKIAFAKEFAKEFAKEFAKE"]


def run_trainer(target: str, token_file: pathlib.Path, *args: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SECRETSBROKER_", "TRAINER_"))}
    env.update(
        {
            "SECRETSBROKER_ADDRESS": target,
            "SECRETSBROKER_TOKEN_FILE": str(token_file),
            "TRAINER_DB_SECRET": f"{MOUNT}/ml/training-db",
            "TRAINER_STORAGE_SECRET": f"{MOUNT}/ml/checkpoint-bucket",
        }
    )
    return subprocess.run([sys.executable, str(TRAINER), "--timeout", "5", *args], env=env, capture_output=True, text=True, timeout=60)


def assert_no_secret_values(result: subprocess.CompletedProcess) -> None:
    for value in SECRET_VALUES:
        assert value not in result.stdout and value not in result.stderr


def test_trainer_reads_its_credentials_and_starts_without_printing_them(broker: BrokerProcess, token_file: pathlib.Path) -> None:
    result = run_trainer(broker.target, token_file)

    assert result.returncode == 0, result.stderr
    assert "database FAKE_trainer@postgres.test.invalid:5432/training" in result.stdout
    assert "training started" in result.stdout
    assert_no_secret_values(result)


def test_trainer_paths_can_be_given_as_flags(broker: BrokerProcess, token_file: pathlib.Path) -> None:
    result = run_trainer(broker.target, token_file, "--db-secret", f"{MOUNT}/ml/missing-db")

    assert result.returncode == 2
    assert "database secret does not exist" in result.stderr


def test_trainer_reports_a_secret_without_the_fields_it_needs(broker: BrokerProcess, token_file: pathlib.Path) -> None:
    result = run_trainer(broker.target, token_file, "--db-secret", f"{MOUNT}/ml/model-registry")

    assert result.returncode == 2
    assert "lacks field(s): host, username, password" in result.stderr
    assert "FAKE-registry-token" not in result.stderr


def test_trainer_with_a_rejected_token_exits_not_allowed(broker: BrokerProcess, tmp_path: pathlib.Path) -> None:
    bad = tmp_path / "bad-token"
    bad.write_text(WRONG_TOKEN, encoding="utf-8")

    result = run_trainer(broker.target, bad)

    assert result.returncode == 3
    assert "UNAUTHENTICATED" in result.stderr


def test_trainer_without_an_address_says_which_variable_to_set(token_file: pathlib.Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SECRETSBROKER_", "TRAINER_"))}
    env["SECRETSBROKER_TOKEN_FILE"] = str(token_file)

    result = subprocess.run([sys.executable, str(TRAINER), "--timeout", "5"], env=env, capture_output=True, text=True, timeout=60)

    assert result.returncode == 1
    assert "SECRETSBROKER_ADDRESS" in result.stderr


def test_trainer_without_a_broker_exits_unavailable(token_file: pathlib.Path) -> None:
    with closed_port() as port:
        result = run_trainer(f"127.0.0.1:{port}", token_file)

    assert result.returncode == 4
    assert "unavailable" in result.stderr


def test_trainer_holds_a_database_lease_follows_its_rotation_and_revokes_it_when_stopped(
    lease_broker: BrokerProcess, vault: VaultEmulator, token_file: pathlib.Path
) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SECRETSBROKER_", "TRAINER_"))}
    env.update(
        {
            "PYTHONUNBUFFERED": "1",
            "SECRETSBROKER_ADDRESS": lease_broker.target,
            "SECRETSBROKER_TOKEN_FILE": str(token_file),
            "TRAINER_DB_SECRET": "vault/ml/training-db",
            "TRAINER_STORAGE_SECRET": "vault/ml/checkpoint-bucket",
            "TRAINER_DB_ROLE": "db/short",  # TTL 4 s, max TTL 12 s: rotated about ten seconds in
        }
    )
    # Trains for up to a minute; the test stops it (SIGTERM, as a preempting scheduler would) once the
    # credentials were rotated.
    process = subprocess.Popen(
        [sys.executable, str(TRAINER), "--timeout", "5", "--train-seconds", "60", "--step-seconds", "0.1"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    lines: "queue.Queue[str]" = queue.Queue()
    reader = threading.Thread(target=lambda: [lines.put(line) for line in process.stdout], daemon=True)  # type: ignore[union-attr]
    reader.start()
    stdout: List[str] = []

    def saw(text: str) -> bool:
        while not lines.empty():
            stdout.append(lines.get())
        return any(text in line for line in stdout)

    try:
        wait_until(lambda: saw("training started") or process.poll() is not None, 20, "the trainer starts")
        wait_until(lambda: saw("credentials rotated") or process.poll() is not None, 40, "the trainer reconnects after a rotation")
        assert process.poll() is None, "".join(stdout) + process.stderr.read()  # type: ignore[union-attr]
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=15)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=5)
    stderr = process.stderr.read()  # type: ignore[union-attr]
    reader.join(timeout=5)  # the process has exited: its stdout is at EOF
    saw("")
    output = "".join(stdout)

    assert process.returncode == 0, output + stderr
    assert "holding a database lease on db/short" in output
    first_user = re.search(r"database (\S+)@postgres\.test\.invalid:5432/training", output)
    rotated_users = re.findall(r"reconnecting as (\S+)", output)
    assert first_user and rotated_users and rotated_users[0] != first_user.group(1)
    assert "stopping early" in output and "database lease revoked" in output
    assert "FAKE/secret/access/key/not/real" not in output + stderr
    # Every lease the job held is revoked in Vault: the current one by the trainer on its way out, the
    # ones it rotated away from by the broker after the rotation overlap (0.5 s here).
    users = {first_user.group(1), *rotated_users}

    def all_revoked() -> bool:
        held = [lease for lease in vault.leases().values() if lease["credential"] in users]
        return len(held) == len(users) and all(lease["revoked"] and not lease["live"] for lease in held)

    wait_until(all_revoked, 5, "every lease the trainer held is revoked in Vault")
