"""examples/trainer.py run as a training job would run it, against the real broker."""

from __future__ import annotations

import os
import pathlib
import subprocess
import sys


from brokerproc import REPO_ROOT, BrokerProcess, free_port
from testdata import MOUNT, WRONG_TOKEN

TRAINER = REPO_ROOT / "clients" / "python" / "examples" / "trainer.py"
SECRET_VALUES = ["FAKE-password-not-real", "FAKE/secret/access/key/not/real", "AKIAFAKEFAKEFAKEFAKE"]


def run_trainer(target: str, token_file: pathlib.Path, *args: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SECRETSBROKER_", "TRAINER_"))}
    env.update(
        {
            "SECRETSBROKER_ADDR": target,
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


def test_trainer_without_a_broker_exits_unavailable(token_file: pathlib.Path) -> None:
    result = run_trainer(f"127.0.0.1:{free_port()}", token_file)

    assert result.returncode == 4
    assert "unavailable" in result.stderr
