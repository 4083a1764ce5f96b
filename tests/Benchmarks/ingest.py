#!/usr/bin/env python3
"""Audit ingestion against broker reads, side by side in one run (docs/benchmarks.md, "Audit store").

Each round: the real broker serves cached GetSecret (L1 hit) with strict audit under h2load, filling the real
Redis stream (reads/s, broker CPU); then the real audit service (its own Release build, one process per store,
each in its own consumer group, kept stopped with SIGSTOP while the broker runs) drains that backlog, first the
SQLite store, then the PostgreSQL 15 store (events/s from its secretsbroker_audit_events_ingested_total counter,
CPU seconds per event of the service and of PostgreSQL). Rounds alternate fill and drains so every figure sees
the same machine; the ratio is events/s of a store over reads/s of the broker in the same round. At the end
both stores are checked: stored == audited reads, no duplicates, chain Verify ok
(tests/Benchmarks/AuditStore --check).
    python3 tests/Benchmarks/ingest.py [--rounds 3] [--duration 10] [--batch 1000] [--warmup-rounds 1]
Needs h2load, redis-server and PostgreSQL 15 (/usr/lib/postgresql/*/bin). Loopback only.
"""
import argparse
import glob
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import load  # noqa: E402  (the broker read benchmark: processes, h2load, CPU and loadavg helpers)

AUDIT_DLL = os.path.join(load.ROOT, "services/Audit/Service", load.BIN, "SecretsBroker.Audit.dll")
CHECK_DLL = os.path.join(load.ROOT, "tests/Benchmarks/AuditStore", load.BIN, "SecretsBroker.Benchmarks.AuditStore.dll")


def tree_cpu_seconds(root_pid):
    """CPU seconds of a process and all its children (PostgreSQL's backends, checkpointer, WAL writer)."""
    children = {}
    for stat in glob.glob("/proc/[0-9]*/stat"):
        try:
            with open(stat) as f:
                fields = f.read().rsplit(")", 1)[1].split()
            children.setdefault(int(fields[1]), []).append(int(stat.split("/")[2]))
        except OSError:
            continue
    total, todo = 0.0, [root_pid]
    while todo:
        pid = todo.pop()
        try:
            total += load.cpu_seconds(pid)
        except OSError:
            pass
        todo.extend(children.get(pid, []))
    return total


class Resp:
    """A minimal RESP2 client (one connection to the benchmark's Redis): polling XINFO GROUPS every few ms
    with redis-cli would start a process each time; the audit service itself is never polled while it drains."""

    def __init__(self, port):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=30)
        self.file = self.sock.makefile("rb")

    def call(self, *argv):
        self.sock.sendall(b"".join([f"*{len(argv)}\r\n".encode()] + [f"${len(a.encode())}\r\n{a}\r\n".encode() for a in argv]))
        return self.read()

    def read(self):
        line = self.file.readline().rstrip(b"\r\n")
        kind, rest = line[:1], line[1:]
        if kind in (b"+", b":"):
            return int(rest) if kind == b":" else rest.decode()
        if kind == b"-":
            raise RuntimeError(rest.decode())
        if kind == b"$":
            size = int(rest)
            return None if size < 0 else self.file.read(size + 2)[:-2].decode(errors="replace")
        return None if int(rest) < 0 else [self.read() for _ in range(int(rest))]

    def group(self, name):
        for fields in self.call("XINFO", "GROUPS", load.STREAM):
            info = dict(zip(fields[::2], fields[1::2]))
            if info["name"] == name:
                return info
        raise RuntimeError(f"no consumer group {name}")


class Ingest(load.Work):
    def broker_settings(self, skip_l1):
        settings = super().broker_settings(skip_l1)
        # One h2load client is one source address: lift the per-source limit too (Broker:RateLimits:Source, 2,000/s by default).
        settings["Broker"]["RateLimits"]["Source"] = {"TokenLimit": 10_000_000, "TokensPerPeriod": 10_000_000}
        return settings

    def start_postgres(self):
        binary = sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=lambda p: [int(x) for x in re.findall(r"\d+", p)])[-1]
        data = os.path.join(self.dir, "pg")
        os.makedirs(data)
        as_pg = []
        if os.getuid() == 0:  # PostgreSQL refuses to run as root
            shutil.chown(self.dir, "postgres", "postgres")
            shutil.chown(data, "postgres", "postgres")
            as_pg = ["setpriv", "--reuid=postgres", "--regid=postgres", "--init-groups", "--"]
        subprocess.run([*as_pg, f"{binary}/initdb", "-D", data, "-U", "postgres", "--auth=trust", "-E", "UTF8", "--locale=C"],
                       check=True, capture_output=True, timeout=300)
        for _ in range(5):
            port = load.free_port()
            # Durable commits: fsync and synchronous_commit stay on (the defaults).
            process = self.start("postgres", [*as_pg, f"{binary}/postgres", "-D", data, "-p", str(port), "-k", data,
                                              "-c", "listen_addresses=127.0.0.1", "-c", "shared_buffers=256MB",
                                              "-c", "max_wal_size=2GB", "-c", "dynamic_shared_memory_type=mmap"])
            if load.wait_log(os.path.join(self.dir, "postgres.log"), process, "ready to accept connections", 120):
                self.postgres = process
                self.pg_connection = f"Host=127.0.0.1;Port={port};Username=postgres;Database=postgres"
                return
        raise RuntimeError("PostgreSQL did not start (see postgres.log)")

    def start_audit(self, name, store_args):
        dll = self.args.audit_dll or AUDIT_DLL
        argv = ["dotnet", dll, "--contentRoot", os.path.dirname(dll),
                "--Kestrel:Endpoints:Grpc:Url=http://127.0.0.1:0", "--Kestrel:Endpoints:Metrics:Url=http://127.0.0.1:0",
                f"--Audit:Key={self.audit_key}", f"--Audit:Ingestion:Redis=127.0.0.1:{self.redis_port}",
                f"--Audit:Ingestion:Group=bench-{name}", f"--Audit:Ingestion:ConsumerName=bench-{name}",
                "--Audit:Auth:Tokens:0:Name=bench", "--Audit:Auth:Tokens:0:Sha256=" + "0" * 64,
                "--Audit:Ingestion:PollInterval=00:00:00.020", "--Audit:Ingestion:LagInterval=00:00:00.500",
                *([f"--Audit:Ingestion:BatchSize={self.args.batch}"] if self.args.batch else []), *store_args]
        process = self.start(f"audit-{name}", argv, cwd=self.dir, env={"ASPNETCORE_ENVIRONMENT": "Production"})
        log = os.path.join(self.dir, f"audit-{name}.log")
        if not load.wait_log(log, process, "Application started", 120):
            raise RuntimeError(f"audit service {name} exited (see {log})")
        with open(log, errors="replace") as f:
            urls = re.findall(r"http://127\.0\.0\.1:[0-9]+", f.read())
        # Which of the two listeners is the metrics one: the one that answers /metrics.
        for url in urls:
            try:
                urllib.request.urlopen(url + "/metrics", timeout=5).read()
                return {"name": name, "process": process, "metrics": url + "/metrics"}
            except Exception:  # noqa: BLE001  (the gRPC listener speaks HTTP/2 only)
                continue
        raise RuntimeError(f"audit service {name}: no metrics listener in {urls}")

    @staticmethod
    def ingested(audit):
        text = urllib.request.urlopen(audit["metrics"], timeout=10).read().decode()
        return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
                   if line.startswith("secretsbroker_audit_events_ingested_total"))

    def drain(self, audit, target, fill_reads_per_s):
        """Resumes a stopped audit service and times it until its counter reaches target; stops it again."""
        pid = audit["process"].pid
        before = audit["stored"]  # read just before it was stopped (a stopped process answers nothing)
        cpu0, pg0, redis0 = load.cpu_seconds(pid), tree_cpu_seconds(self.postgres.pid), load.cpu_seconds(self.redis.pid)
        group = f"bench-{audit['name']}"
        started = time.monotonic()
        os.kill(pid, signal.SIGCONT)
        deadline = started + self.args.drain_timeout
        # Done when its group has every entry delivered (lag 0) and acknowledged (pending 0): the service acknowledges an
        # entry only after the store committed it. Polled in Redis, so the service spends nothing on being watched.
        while True:
            info = self.resp.group(group)
            if info["lag"] == 0 and info["pending"] == 0:
                break
            if time.monotonic() > deadline:
                raise RuntimeError(f"audit {audit['name']}: not drained within {self.args.drain_timeout} s ({info})")
            time.sleep(0.005)
        elapsed = time.monotonic() - started
        # The Prometheus exporter caches its answer for a moment: wait for the counter past that (not timed).
        settle = time.monotonic() + 10
        while (stored := self.ingested(audit)) < before + target and time.monotonic() < settle:
            time.sleep(0.1)
        audit["stored"] = stored
        os.kill(pid, signal.SIGSTOP)
        if stored - before != target:
            raise RuntimeError(f"audit {audit['name']}: its counter says {stored - before:.0f} events stored for {target} audited")
        cpu = load.cpu_seconds(pid) - cpu0
        store_cpu = tree_cpu_seconds(self.postgres.pid) - pg0 if audit["name"] == "postgres" else 0.0
        events = stored - before
        result = {"store": audit["name"], "events": events, "seconds": elapsed, "events_per_s": events / elapsed,
                  "ratio": events / elapsed / fill_reads_per_s, "cpu_ms_per_1k": cpu * 1e6 / events,
                  "store_cpu_ms_per_1k": store_cpu * 1e6 / events, "redis_cpu_ms_per_1k": (load.cpu_seconds(self.redis.pid) - redis0) * 1e6 / events,
                  "loadavg": load.loadavg()}
        print(f"    drain {audit['name']:<8} {events:>8.0f} events in {elapsed:6.2f} s = {result['events_per_s']:>7.0f} events/s "
              f"ratio {result['ratio']:.2f}x | CPU ms/1k events: service {result['cpu_ms_per_1k']:.0f}, store {result['store_cpu_ms_per_1k']:.0f}, "
              f"redis {result['redis_cpu_ms_per_1k']:.0f} | loadavg {result['loadavg']}", flush=True)
        return result

    def stream_length(self):
        out = subprocess.run(["redis-cli", "-p", str(self.redis_port), "XLEN", load.STREAM], capture_output=True, text=True, timeout=30)
        return int(out.stdout.strip() or 0)

    def run(self):
        args = self.args
        self.loadavg_start = load.loadavg()
        print(f"bench dir {self.dir}; loadavg at start {self.loadavg_start}", flush=True)
        self.harness("requests", self.dir, "bench", str(load.SECRETS))
        self.start_redis()
        self.resp = Resp(self.redis_port)
        self.start_postgres()
        self.write_broker_files()
        broker, address = self.start_broker("broker", skip_l1=False)
        self.verify(address, "get.grpc", "BACKEND")
        self.verify(address, "get.grpc", "L1")
        initial = sum(self.audit_since("0-0")[1:])
        # Both groups exist before either service runs, so neither trims what the other has not read yet.
        for name in ("sqlite", "postgres"):
            subprocess.run(["redis-cli", "-p", str(self.redis_port), "XGROUP", "CREATE", load.STREAM, f"bench-{name}", "0", "MKSTREAM"],
                           check=True, capture_output=True, timeout=30)
        self.audits = [self.start_audit("sqlite", [f"--Audit:Store:Path={os.path.join(self.dir, 'audit.db')}"]),
                       self.start_audit("postgres", ["--Audit:Store:Provider=postgres", f"--Audit:Store:ConnectionString={self.pg_connection}"])]
        # Both have stored the verification reads before they are stopped, so each round's backlog is the same for both.
        for audit in self.audits:
            deadline = time.monotonic() + 120
            while (stored := self.ingested(audit)) < initial:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"audit {audit['name']} did not store the {initial} verification events")
                time.sleep(0.05)
            audit["stored"] = stored
            os.kill(audit["process"].pid, signal.SIGSTOP)
        # Warm-up: broker JIT under load, then each audit service drains what that wrote (its JIT and connections).
        after = self.stream_last_id()
        self.h2load(address, "GetSecret", "get.grpc", args.connections, args.streams, args.warmup)
        time.sleep(0.5)
        warm = sum(self.audit_since(after)[1:])
        for audit in self.audits:
            self.drain(audit, warm, 1.0)
        self.total_events = initial + warm
        self.rounds = []
        for number in range(-args.warmup_rounds, args.rounds):
            print(f"  round {number + 1}:" if number >= 0 else "  warm-up round (not counted):", flush=True)
            run = self.measure(address, "GetSecret", "get.grpc", "load", broker.pid, broker=True, source="L1")
            if run["problems"]:
                # Reported with the round (the backlog is every audited event, whatever the broker answered).
                print("    broker checks: " + "; ".join(run["problems"]), flush=True)
            reads = run["succeeded"] / run["seconds"]
            backlog = run["audit_allowed"] + run["audit_other"]
            print(f"    broker   {reads:>8.0f} reads/s ({run['succeeded']} reads, {backlog} events, stream {self.stream_length()} entries), "
                  f"CPU {run['cpu_s'] * 1e6 / max(1, run['done']):.0f} us/read (+redis {run['redis_cpu_s'] * 1e6 / max(1, run['done']):.0f}) "
                  f"| loadavg {load.loadavg()}", flush=True)
            drains = [self.drain(audit, backlog, reads) for audit in self.audits]
            self.total_events += backlog
            if number < 0:
                continue
            self.rounds.append({"reads_per_s": reads, "reads": run["succeeded"], "events": backlog, "problems": run["problems"],
                                "broker_cpu_us": run["cpu_s"] * 1e6 / max(1, run["done"]), "drains": drains})
        # Let both finish whatever is left (trim) and check the stores.
        for audit in self.audits:
            os.kill(audit["process"].pid, signal.SIGCONT)
        time.sleep(2)
        self.stream_left = self.stream_length()
        self.checks = {
            "sqlite": self.check(["--store", "sqlite", "--check", os.path.join(self.dir, "audit.db")]),
            "postgres": self.check(["--store", "postgres", "--check", self.pg_connection]),
        }
        self.loadavg_end = load.loadavg()

    def check(self, argv):
        out = subprocess.run(["dotnet", CHECK_DLL, *argv], capture_output=True, text=True, timeout=1800)
        print(f"  check {' '.join(argv[:2])}: {out.stdout.strip()} {out.stderr.strip()}", flush=True)
        return out.stdout.strip()

    def report(self):
        a = self.args
        lines = [f"h2load -t 1 -c {a.connections} -m {a.streams}, {a.duration} s per fill; {a.rounds} rounds (after {a.warmup_rounds} not counted) of broker fill, then SQLite "
                 f"drain, then PostgreSQL drain; batch {a.batch or 'default'}. loadavg start {self.loadavg_start}, end {self.loadavg_end} (2 cores).",
                 "", "| round | broker reads/s | CPU us/read | events | store | events/s | ratio | CPU ms/1k events (service + store) | loadavg |",
                 "| --- | ---: | ---: | ---: | --- | ---: | ---: | ---: | --- |"]
        for number, r in enumerate(self.rounds, 1):
            for d in r["drains"]:
                lines.append(f"| {number} | {r['reads_per_s']:.0f} | {r['broker_cpu_us']:.0f} | {r['events']} | {d['store']} | {d['events_per_s']:.0f} | "
                             f"{d['ratio']:.2f}x | {d['cpu_ms_per_1k']:.0f} + {d['store_cpu_ms_per_1k']:.0f} | {d['loadavg']} |")
        for store in ("sqlite", "postgres"):
            ratios = sorted(d["ratio"] for r in self.rounds for d in r["drains"] if d["store"] == store)
            lines.append(f"\n{store}: median ratio {ratios[len(ratios) // 2]:.2f}x (rounds {', '.join(f'{x:.2f}' for x in ratios)}); check: {self.checks[store]}")
        lines.append(f"Stream entries left after both drained: {self.stream_left}")
        for number, r in enumerate(self.rounds, 1):
            if r["problems"]:
                lines.append(f"Round {number} broker checks: " + "; ".join(r["problems"]))
        text = "\n".join(lines)
        print("\n" + text)
        os.makedirs(a.out, exist_ok=True)
        with open(os.path.join(a.out, "ingest.md"), "w") as f:
            f.write(text + "\n")
        with open(os.path.join(a.out, "ingest.json"), "w") as f:
            json.dump(self.rounds, f, indent=1)
        lines_ok = [f"records={self.total_events} " in c and "verify ok=True" in c for c in self.checks.values()]
        print(f"expected records in each store: {self.total_events} (every audited event, once)")
        return all(lines_ok)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=int, default=10, help="seconds of broker load per round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--warmup", type=int, default=5)
    # The audit services' first drains still run tier-0 code and JIT it in the background (a sampled profile of the first
    # round: about a third of the service's CPU in the JIT); a full round each first measures them warm, as the broker is.
    parser.add_argument("--warmup-rounds", type=int, default=1, help="full rounds run first and not counted")
    parser.add_argument("--connections", type=int, default=4)
    parser.add_argument("--streams", type=int, default=16)
    parser.add_argument("--batch", type=int, default=0, help="Audit:Ingestion:BatchSize (0: the service's default)")
    parser.add_argument("--audit-dll", help="another build of the audit service (e.g. the one before a change), same settings")
    parser.add_argument("--drain-timeout", type=int, default=600)
    parser.add_argument("--out", default=os.path.join(load.ROOT, "tests/Benchmarks/artifacts"))
    parser.add_argument("--keep", action="store_true")
    args = parser.parse_args()
    work = Ingest(args)
    try:
        work.run()
        ok = work.report()
    finally:
        for audit in getattr(work, "audits", []):
            if audit["process"].poll() is None:
                os.kill(audit["process"].pid, signal.SIGCONT)
        work.stop_all()
        if not args.keep:
            shutil.rmtree(work.dir, ignore_errors=True)
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
