#!/usr/bin/env bash
# Builds what the Python client tests need, checks the committed stubs, and runs the tests.
#
#   tests/python/run_python_client_tests.sh [extra pytest args]
#
# Needs (Debian): python3-grpcio python3-protobuf python3-pytest python3-pytest-timeout protobuf-compiler
# protobuf-compiler-grpc, and the .NET SDK (dotnet) for the broker and the Vault emulator (tests/VaultEmulator,
# which the lease and watch tests run as a process). Optional: openssl (TLS tests) and
# python3-setuptools (wheel test); without them those tests are skipped, with a warning here. Uses /usr/bin/python3
# (Debian's interpreter, where those packages live), or $PYTHON if set.
# Exits non-zero when anything fails, including when pytest collects no tests (its exit code 5).
set -euo pipefail

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$repo_root"
PYTHON="${PYTHON:-/usr/bin/python3}"

step() { printf '\n== %s\n' "$*"; }

step "python: $PYTHON"
if ! "$PYTHON" -c 'import grpc, google.protobuf, pytest, pytest_timeout' 2>/dev/null; then
  echo "run_python_client_tests: $PYTHON lacks grpc, protobuf, pytest or pytest-timeout;" \
       "install Debian's python3-grpcio python3-protobuf python3-pytest python3-pytest-timeout (and use /usr/bin/python3)" >&2
  exit 2
fi
"$PYTHON" -c 'import sys, grpc, google.protobuf, pytest; print(f"python {sys.version.split()[0]}, grpcio {grpc.__version__}, protobuf {google.protobuf.__version__}, pytest {pytest.__version__}")'

command -v openssl >/dev/null 2>&1 || echo "WARNING: openssl not found: the TLS tests will be skipped (apt-get install openssl)" >&2
"$PYTHON" -c 'import setuptools.build_meta' 2>/dev/null || echo "WARNING: setuptools not found: the wheel test will be skipped (apt-get install python3-setuptools)" >&2

step "stubs: clients/python/scripts/check_stubs.sh"
clients/python/scripts/check_stubs.sh

step "broker: dotnet build services/Broker -c Release"
if ! build_log="$(dotnet build services/Broker -c Release -nologo 2>&1)"; then
  printf '%s\n' "$build_log" >&2
  echo "run_python_client_tests: the broker build failed" >&2
  exit 1
fi
printf '%s\n' "$build_log" | tail -n 3

step "brokerctl: dotnet build clients/cli -c Release (the envelope tests run it)"
if ! build_log="$(dotnet build clients/cli -c Release -nologo 2>&1)"; then
  printf '%s\n' "$build_log" >&2
  echo "run_python_client_tests: the brokerctl build failed" >&2
  exit 1
fi
printf '%s\n' "$build_log" | tail -n 3

step "vault emulator: dotnet build tests/VaultEmulator -c Release"
if ! build_log="$(dotnet build tests/VaultEmulator -c Release -nologo 2>&1)"; then
  printf '%s\n' "$build_log" >&2
  echo "run_python_client_tests: the Vault emulator build failed" >&2
  exit 1
fi
printf '%s\n' "$build_log" | tail -n 3

step "pytest: tests/python/client"
set +e
PYTHONDONTWRITEBYTECODE=1 "$PYTHON" -m pytest -p no:cacheprovider -ra tests/python/client "$@"
status=$?
set -e
if [ "$status" -eq 5 ]; then
  echo "run_python_client_tests: pytest collected no tests; that counts as a failure" >&2
  exit 1
fi
if [ "$status" -ne 0 ]; then
  echo "run_python_client_tests: FAILED (pytest exit $status)" >&2
  exit "$status"
fi
echo "run_python_client_tests: OK"
