#!/usr/bin/env bash
# Generates the protobuf/gRPC Python stubs of the public API into the `secretsbroker` package.
#
#   clients/python/scripts/generate_stubs.sh            # regenerate the committed stubs
#   clients/python/scripts/generate_stubs.sh OUT_DIR    # generate into OUT_DIR (used by check_stubs.sh)
#
# Tools (Debian): protobuf-compiler (protoc) and protobuf-compiler-grpc (grpc_python_plugin).
# Every .proto under protos/secretsbroker/ is compiled; protos/secretsbroker/v1/broker.proto becomes
# <package>/v1/broker_pb2.py, broker_pb2.pyi and broker_pb2_grpc.py. Imports between generated modules
# of one proto package are rewritten to relative imports (`from . import broker_pb2`), so the stubs
# keep working wherever the package is installed or vendored.
set -euo pipefail

script_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
client_dir="$(dirname "$script_dir")"
repo_root="$(cd "$client_dir/../.." && pwd)"
protos_dir="$repo_root/protos"
out_dir="${1:-$client_dir/src/secretsbroker}"

PROTOC="${PROTOC:-protoc}"
GRPC_PYTHON_PLUGIN="${GRPC_PYTHON_PLUGIN:-/usr/bin/grpc_python_plugin}"

if ! command -v "$PROTOC" >/dev/null 2>&1; then
  echo "generate_stubs: '$PROTOC' not found; install Debian's protobuf-compiler (apt-get install protobuf-compiler)" >&2
  exit 2
fi
if [ ! -x "$GRPC_PYTHON_PLUGIN" ]; then
  echo "generate_stubs: '$GRPC_PYTHON_PLUGIN' not found; install Debian's protobuf-compiler-grpc (apt-get install protobuf-compiler-grpc)" >&2
  exit 2
fi

mapfile -t protos < <(cd "$protos_dir" && find secretsbroker -name '*.proto' | LC_ALL=C sort)
if [ "${#protos[@]}" -eq 0 ]; then
  echo "generate_stubs: no .proto files under $protos_dir/secretsbroker" >&2
  exit 2
fi

# protoc writes <proto path without .proto>_pb2.py under a directory mirroring the proto path, so
# generate into a scratch tree rooted at protos/ and move each package's files into place.
scratch="$(mktemp -d)"
trap 'rm -rf "$scratch"' EXIT
"$PROTOC" \
  --proto_path="$protos_dir" \
  --python_out="$scratch" \
  --pyi_out="$scratch" \
  --grpc_out="$scratch" \
  --plugin=protoc-gen-grpc="$GRPC_PYTHON_PLUGIN" \
  "${protos[@]}"

mkdir -p "$out_dir"
# Drop stubs of protos that no longer exist (generated files only; hand-written modules are kept).
find "$out_dir" \( -name '*_pb2.py' -o -name '*_pb2.pyi' -o -name '*_pb2_grpc.py' \) -delete

for proto in "${protos[@]}"; do
  rel_dir="$(dirname "${proto#secretsbroker/}")"          # v1, audit/v1, ...
  [ "$rel_dir" = "." ] && rel_dir=""
  py_pkg="secretsbroker${rel_dir:+.${rel_dir//\//.}}"      # secretsbroker.v1
  dest="$out_dir${rel_dir:+/$rel_dir}"
  mkdir -p "$dest"
  base="$(basename "$proto" .proto)"
  for suffix in _pb2.py _pb2.pyi _pb2_grpc.py; do
    src="$scratch/$(dirname "$proto")/$base$suffix"
    [ -f "$src" ] || continue
    # `from secretsbroker.v1 import broker_pb2 as ...` -> `from . import broker_pb2 as ...`
    sed -E "s/^from ${py_pkg//./\\.} import /from . import /" "$src" > "$dest/$base$suffix"
  done
  # Each generated directory is a regular package; leave an existing __init__.py alone.
  d="$dest"
  while [ "$d" != "$out_dir" ] && [ "$d" != "/" ]; do
    [ -f "$d/__init__.py" ] || printf '"""Generated protobuf and gRPC stubs (scripts/generate_stubs.sh). Do not edit."""\n' > "$d/__init__.py"
    d="$(dirname "$d")"
  done
done

echo "generate_stubs: ${#protos[@]} proto file(s) -> $out_dir"
