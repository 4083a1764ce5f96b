#!/usr/bin/env bash
# Benchmarks of the broker (docs/benchmarks.md): builds Release, loads a bare gRPC baseline and
# the real broker side by side with h2load (tests/Benchmarks/load.py), runs the BenchmarkDotNet
# micro-benchmarks (tests/Benchmarks/Micro), then the lease scenario (tests/Benchmarks/Leases: 10,000
# leases on one stream, about 2 minutes). Loopback only; every run is bounded in time.
#   bash tests/Benchmarks/run.sh                 # everything (about 10 minutes on 2 cores)
#   BENCH_DURATION=10 bash tests/Benchmarks/run.sh --keep   # options after the script go to load.py
#   BENCH_SKIP_MICRO=1 / BENCH_SKIP_LOAD=1 / BENCH_SKIP_LEASES=1   # leave a part out
#   BENCH_MICRO_FILTER='*ReadPath*'              # a subset of the micro-benchmarks
#   BENCH_LEASES_COUNT=N                         # leases in the lease scenario (default 10000)
#   BENCH_SKIP_ENVELOPE=1 / BENCH_ENVELOPE_ARGS='--gib 1 --flat-gib 4'   # envelope files (C# and Python, about 2 minutes)
#   BENCH_SKIP_CURVES=1 / BENCH_CURVES='policies,secrets,callers,bare'   # cost curves (tests/Benchmarks/curves.py, about 10 minutes)
#   BENCH_SKIP_FLEET=1                           # 10,000 watches on one replica, three replicas on one Redis (about 4 minutes)
# Needs h2load (apt-get install -y nghttp2-client), redis-server and python3.
set -euo pipefail
cd "$(dirname "$0")/../.."
out=tests/Benchmarks/artifacts
mkdir -p "$out"

for tool in h2load redis-server redis-cli python3; do
  command -v "$tool" >/dev/null || { echo "$tool is missing: apt-get install -y nghttp2-client redis-server python3" >&2; exit 1; }
done

for project in services/Broker tests/Benchmarks/Baseline tests/Benchmarks/Harness tests/Benchmarks/Micro tests/Benchmarks/Leases; do
  dotnet build "$project" -c Release -nologo -v quiet
done

status=0
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(free -g | awk '/Mem:/ {print $2}') GiB, loadavg $(cut -d' ' -f1-3 /proc/loadavg)"
if [[ "${BENCH_SKIP_LOAD:-0}" != 1 ]]; then
  python3 tests/Benchmarks/load.py --out "$out" "$@" || status=$?
fi
if [[ "${BENCH_SKIP_MICRO:-0}" != 1 ]]; then
  (cd tests/Benchmarks/Micro && dotnet run -c Release --no-build -- --filter "${BENCH_MICRO_FILTER:-*}" --artifacts "../artifacts/micro") || status=$?
  cat "$out"/micro/results/*-report-github.md 2>/dev/null || true
fi
if [[ "${BENCH_SKIP_LEASES:-0}" != 1 ]]; then
  (cd tests/Benchmarks/Leases && dotnet run -c Release --no-build -- --count "${BENCH_LEASES_COUNT:-10000}" --out "../artifacts/leases-memory.txt") || status=$?
fi
if [[ "${BENCH_SKIP_ENVELOPE:-0}" != 1 ]]; then
  dotnet build tests/Benchmarks/Envelope -c Release -nologo -v quiet
  # shellcheck disable=SC2086
  (cd tests/Benchmarks/Envelope && dotnet run -c Release --no-build -- ${BENCH_ENVELOPE_ARGS:-}) | tee "$out/envelope.txt" || status=$?
  /usr/bin/python3 tests/Benchmarks/envelope_python.py | tee -a "$out/envelope.txt" || status=$?
fi
if [[ "${BENCH_SKIP_CURVES:-0}" != 1 ]]; then
  python3 tests/Benchmarks/curves.py --out "$out" --only "${BENCH_CURVES:-policies,secrets,callers,bare}" || status=$?
fi
if [[ "${BENCH_SKIP_FLEET:-0}" != 1 ]]; then
  dotnet build tests/Benchmarks/Fleet -c Release -nologo -v quiet
  (cd tests/Benchmarks/Fleet && dotnet run -c Release --no-build -- watchers --out "../artifacts/fleet-watchers.txt") || status=$?
  (cd tests/Benchmarks/Fleet && dotnet run -c Release --no-build -- replicas --out "../artifacts/fleet-replicas.txt") || status=$?
fi
echo "results: $out/curves.json, $out/load.md, $out/micro/results/, $out/leases-memory.txt, $out/envelope.txt, $out/fleet-*.txt"
exit $status
