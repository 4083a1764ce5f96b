#!/usr/bin/env bash
# Builds and starts the Vault emulator on a free loopback port, runs the hvac conformance script
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
port="$(/usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()')"

dotnet run --no-build --project "$repo/tests/VaultEmulator/VaultEmulator.csproj" -- \
    --urls "http://127.0.0.1:$port" --root-token root --fake-time true --seed "$work/seed.json" \
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

status=0
/usr/bin/python3 "$here/vault_conformance.py" run "http://127.0.0.1:$port" "$work" || status=$?
if [[ $status -ne 0 ]]; then
    echo "--- emulator log ---" >&2
    tail -n 50 "$work/emulator.log" >&2
fi
exit $status
