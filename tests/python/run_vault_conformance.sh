#!/usr/bin/env bash
# Builds and starts the Vault emulator on a loopback port it picks itself (port 0, read from its
# "vault emulator listening on" line), runs the hvac conformance script
# against it, stops the emulator. Exit status: non-zero when any check fails or the emulator
# does not start. Needs: dotnet, /usr/bin/python3 with python3-hvac, python3-jwt, python3-cryptography.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
work="$(mktemp -d)"
emulator_pid=""
cleanup() {
    if [[ -n "$emulator_pid" ]] && kill -0 "$emulator_pid" 2>/dev/null; then
        kill "$emulator_pid" 2>/dev/null || true
        wait "$emulator_pid" 2>/dev/null || true
    fi
    rm -rf "$work"
}
trap cleanup EXIT

dotnet build "$repo/tests/VaultEmulator/VaultEmulator.csproj" -nologo -v quiet
/usr/bin/python3 "$here/vault_conformance.py" write-seed "$work"
dotnet run --no-build --project "$repo/tests/VaultEmulator/VaultEmulator.csproj" -- \
    --urls "http://127.0.0.1:0" --root-token root --fake-time true --seed "$work/seed.json" \
    >"$work/emulator.log" 2>&1 &
emulator_pid=$!

for _ in $(seq 1 300); do
    if grep -q "vault emulator listening on" "$work/emulator.log"; then
        break
    fi
    if ! kill -0 "$emulator_pid" 2>/dev/null; then
        echo "vault emulator exited before listening:" >&2
        cat "$work/emulator.log" >&2
        exit 1
    fi
    sleep 0.2
done
if ! grep -q "vault emulator listening on" "$work/emulator.log"; then
    echo "vault emulator did not start within 60s:" >&2
    cat "$work/emulator.log" >&2
    exit 1
fi
address="$(grep -m1 -o "vault emulator listening on http://127.0.0.1:[0-9]*" "$work/emulator.log" | grep -o "http://.*")"

status=0
# One bound for the whole script (it is not a pytest suite): a hung check fails the run instead of stalling it.
timeout 600 /usr/bin/python3 "$here/vault_conformance.py" run "$address" "$work" || status=$?
if [[ $status -ne 0 ]]; then
    echo "--- emulator log ---" >&2
    tail -n 50 "$work/emulator.log" >&2
fi
exit $status
