#!/usr/bin/env bash
# Fails when the committed Python stubs in clients/python/src/secretsbroker differ from what
# scripts/generate_stubs.sh produces from protos/ now (a proto changed without regenerating, or a
# generated file was edited by hand). Exit 0: up to date; 1: out of date; 2: tools missing.
set -euo pipefail

script_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
client_dir="$(dirname "$script_dir")"
committed="$client_dir/src/secretsbroker"

fresh="$(mktemp -d)"
trap 'rm -rf "$fresh"' EXIT
"$script_dir/generate_stubs.sh" "$fresh" >/dev/null

# Compare only generated files (and the package markers the generator creates), both ways.
list_generated() {
  (cd "$1" && find . -type f \( -name '*_pb2.py' -o -name '*_pb2.pyi' -o -name '*_pb2_grpc.py' \) | sed 's|^\./||' | LC_ALL=C sort)
}
status=0
if ! diff -u <(list_generated "$committed") <(list_generated "$fresh") > "$fresh.list.diff"; then
  echo "check_stubs: the set of generated stub files differs from protos/ (- committed, + expected):" >&2
  grep -E '^[-+][^-+]' "$fresh.list.diff" >&2 || true
  status=1
fi
while IFS= read -r file; do
  if [ -f "$committed/$file" ] && ! diff -u "$committed/$file" "$fresh/$file" > "$fresh.file.diff"; then
    echo "check_stubs: $file is out of date (- committed, + expected):" >&2
    head -n 40 "$fresh.file.diff" >&2
    status=1
  fi
done < <(list_generated "$fresh")
rm -f "$fresh.list.diff" "$fresh.file.diff"

if [ "$status" -ne 0 ]; then
  echo "" >&2
  echo "check_stubs: FAILED: the committed Python stubs do not match protos/." >&2
  echo "check_stubs: run clients/python/scripts/generate_stubs.sh and commit the result." >&2
  exit 1
fi
echo "check_stubs: Python stubs are up to date with protos/"
