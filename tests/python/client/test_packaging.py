"""The package builds offline into a wheel that carries the stubs and type information, and works installed.

The wheel is built through setuptools' PEP 517 backend in-process (only Debian's python3-setuptools is
needed, no pip and no network) and installed by unpacking it, which is all a pure-Python wheel needs.
"""

from __future__ import annotations

import pathlib
import shutil
import subprocess
import sys
import zipfile

import pytest

from brokerproc import REPO_ROOT, BrokerProcess
from testdata import MOUNT, TOKEN

CLIENT_DIR = REPO_ROOT / "clients" / "python"


def _has_offline_build_tools() -> bool:
    probe = subprocess.run([sys.executable, "-c", "import setuptools.build_meta"], capture_output=True)
    return probe.returncode == 0


pytestmark = pytest.mark.skipif(not _has_offline_build_tools(), reason="setuptools (Debian python3-setuptools) is needed to build the wheel")


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> pathlib.Path:
    work = tmp_path_factory.mktemp("wheel")
    source = work / "src"
    shutil.copytree(CLIENT_DIR, source, ignore=shutil.ignore_patterns("build", "dist", "*.egg-info", "__pycache__"))
    (work / "dist").mkdir()
    result = subprocess.run(
        [sys.executable, "-c", "import sys, setuptools.build_meta as b; print(b.build_wheel(sys.argv[1]))", str(work / "dist")],
        cwd=source,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    (built,) = (work / "dist").glob("secretsbroker-*.whl")
    return built


def test_the_wheel_contains_the_api_the_stubs_and_type_information(wheel: pathlib.Path) -> None:
    names = set(zipfile.ZipFile(wheel).namelist())

    for expected in [
        "secretsbroker/__init__.py",
        "secretsbroker/client.py",
        "secretsbroker/py.typed",
        "secretsbroker/v1/broker_pb2.py",
        "secretsbroker/v1/broker_pb2.pyi",
        "secretsbroker/v1/broker_pb2_grpc.py",
        "secretsbroker/aio/__init__.py",
        "secretsbroker/_streams.py",
    ]:
        assert expected in names


def test_the_installed_package_reads_a_secret(wheel: pathlib.Path, broker: BrokerProcess, tmp_path: pathlib.Path) -> None:
    target = tmp_path / "site"
    with zipfile.ZipFile(wheel) as archive:
        archive.extractall(target)
    script = (
        "import secretsbroker, sys\n"
        f"assert secretsbroker.__file__.startswith({str(target)!r}), secretsbroker.__file__\n"
        f"with secretsbroker.Client({broker.target!r}, token={TOKEN!r}) as c:\n"
        f"    print(c.get_secret({MOUNT + '/ml/training-db'!r}).version)\n"
        "import asyncio, secretsbroker.aio\n"
        "async def main():\n"
        f"    async with secretsbroker.aio.Client({broker.target!r}, token={TOKEN!r}) as c:\n"
        f"        print((await c.get_secret({MOUNT + '/ml/training-db'!r})).version)\n"
        "asyncio.run(main())\n"
    )

    run = subprocess.run([sys.executable, "-c", script], env={"PYTHONPATH": str(target), "PATH": "/usr/bin:/bin"}, capture_output=True, text=True, cwd=tmp_path)

    assert run.returncode == 0, run.stderr
    assert run.stdout.split() == ["1", "1"]
