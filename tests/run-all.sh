#!/usr/bin/env bash
# Runs every test suite of the repository: the .NET solution's xunit projects, then the suites that
# drive the broker from other languages. Needs the tools .ci/run installs (see README, "Tests").
set -euo pipefail
cd "$(dirname "$0")/.."

configuration="${CONFIGURATION:-Release}"

echo "== build (warnings are errors)"
dotnet build Broker.sln -c "$configuration" -nologo -clp:ErrorsOnly

echo "== .NET tests"
# The console log is long; a failure's name and message are repeated at the end, where CI's tail shows them.
dotnet_log="$(mktemp)"
if ! dotnet test Broker.sln -c "$configuration" --no-build -nologo --logger "console;verbosity=normal" 2>&1 | tee "$dotnet_log"; then
  echo "== .NET tests failed:"
  grep -E -A 25 '^\s+Failed [A-Za-z]' "$dotnet_log" | grep -v -E '^\s+Passed ' | head -200
  exit 1
fi

echo "== Vault emulator conformance (driven by the real hvac client)"
bash tests/python/run_vault_conformance.sh

echo "== Python client (pytest against a real broker process)"
bash tests/python/run_python_client_tests.sh

echo "== all suites passed"
