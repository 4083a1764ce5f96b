#!/usr/bin/env bash
# Runs every test suite of the repository: the .NET solution's xunit projects, then the suites that
# drive the broker from other languages. Needs the tools .ci/run installs (see README, "Tests").
set -euo pipefail
cd "$(dirname "$0")/.."

configuration="${CONFIGURATION:-Release}"

echo "== build (warnings are errors)"
dotnet build Broker.sln -c "$configuration" -nologo -clp:ErrorsOnly

echo "== .NET tests"
dotnet test Broker.sln -c "$configuration" --no-build -nologo --logger "console;verbosity=normal"

echo "== Vault emulator conformance (driven by the real hvac client)"
bash tests/python/run_vault_conformance.sh

echo "== Python client (pytest against a real broker process)"
bash tests/python/run_python_client_tests.sh

echo "== all suites passed"
