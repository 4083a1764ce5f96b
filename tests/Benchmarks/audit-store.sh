#!/usr/bin/env bash
# Audit store benchmark (docs/benchmarks.md, "Audit store"): for SQLite and for PostgreSQL (a throwaway
# Debian PostgreSQL 15 in a temp directory on a loopback port, run as the postgres user when started as
# root), the ingestion rate through decode (MAC check) + batch append, then Query page latency over a
# bulk-loaded store. Not part of CI.
#   bash tests/Benchmarks/audit-store.sh                       # 1,000,000 events loaded
#   BENCH_EVENTS=10000000 BENCH_INGEST=200000 bash tests/Benchmarks/audit-store.sh
#   BENCH_STORES="postgres" bash tests/Benchmarks/audit-store.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
events=${BENCH_EVENTS:-1000000}
ingest=${BENCH_INGEST:-200000}
stores=${BENCH_STORES:-"sqlite postgres"}
dotnet build tests/Benchmarks/AuditStore -c Release -nologo -v quiet
bench="dotnet tests/Benchmarks/AuditStore/bin/Release/net10.0/SecretsBroker.Benchmarks.AuditStore.dll"
work=$(mktemp -d /tmp/audit-store-bench.XXXXXX)
pg_pid=""
cleanup() { [[ -n "$pg_pid" ]] && kill "$pg_pid" 2>/dev/null; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT

for store in $stores; do
  if [[ "$store" == postgres ]]; then
    bin=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)
    as_pg=()
    if [[ "$(id -u)" == 0 ]]; then chown postgres:postgres "$work"; as_pg=(setpriv --reuid=postgres --regid=postgres --init-groups --); fi
    "${as_pg[@]}" "$bin/initdb" -D "$work/data" -U postgres --auth=trust -E UTF8 --locale=C >/dev/null
    port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
    # Durable commits (fsync on, synchronous_commit on): the ingestion figure includes the WAL flush.
    "${as_pg[@]}" "$bin/postgres" -D "$work/data" -p "$port" -k "$work/data" -c listen_addresses=127.0.0.1 \
      -c shared_buffers=512MB -c max_wal_size=4GB -c dynamic_shared_memory_type=mmap >"$work/pg.log" 2>&1 &
    pg_pid=$!
    for _ in $(seq 1 120); do grep -q "ready to accept connections" "$work/pg.log" && break; sleep 0.5; done
    $bench --store postgres --connection "Host=127.0.0.1;Port=$port;Username=postgres;Database=postgres" --ingest "$ingest" --events "$events"
  else
    $bench --store sqlite --dir "$work/sqlite" --ingest "$ingest" --events "$events"
  fi
done
