#!/usr/bin/env python3
"""Read-path load benchmark: the real broker against a bare gRPC baseline, side by side, with h2load.

Started by tests/Benchmarks/run.sh after a Release build. Everything listens on 127.0.0.1 only and every
run is bounded by --duration. Each broker scenario is checked three ways: one call with a real gRPC
client (grpc-status OK and the expected value source), h2load's own counters (no failed/errored
requests, HTTP 2xx only), and the broker's audit events in the Redis stream (exactly one allowed event
with grpc-status 0 per served secret, none other). A scenario failing any check is reported FAILED.
"""
import argparse
import base64
import hashlib
import json
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
BIN = "bin/Release/net10.0"
BROKER_DLL = os.path.join(ROOT, "services/Broker", BIN, "SecretsBroker.Broker.dll")
BASELINE_DLL = os.path.join(ROOT, "tests/Benchmarks/Baseline", BIN, "SecretsBroker.Benchmarks.Baseline.dll")
HARNESS_DLL = os.path.join(ROOT, "tests/Benchmarks/Harness", BIN, "SecretsBroker.Benchmarks.Harness.dll")
TOKEN = "FAKE-bench-token-not-a-secret"
JWT_ISSUER = "https://kubernetes.default.svc.bench.invalid"
JWT_AUDIENCE = "secrets-broker"
STREAM = "secretsbroker:audit"
SECRETS = 100


def free_port():
    """A port that was free a moment ago: only for redis-server, which cannot bind port 0 (see start_redis)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_log(path, process, marker, seconds=60):
    """The first line of the process's log that contains ``marker`` (its own word that it is ready, so another
    process on the same port cannot pass for it), or None when the process exited first."""
    deadline = time.time() + seconds
    while time.time() < deadline:
        with open(path, errors="replace") as f:
            for line in f:
                if marker in line:
                    return line
        if process.poll() is not None:
            return None
        time.sleep(0.2)
    raise RuntimeError(f"{process.args[:2]} did not log {marker!r} within {seconds} s")


def wait_address(path, process, marker, seconds=60):
    """The address a child started on port 0 reports on its ``marker`` line (Kestrel: "Now listening on: http://...")."""
    line = wait_log(path, process, marker, seconds)
    match = re.search(r"http://127\.0\.0\.1:[0-9]+", line or "")
    if not match:
        raise RuntimeError(f"process {process.args[:2]} exited with {process.returncode} before it listened (see {path})")
    return match.group(0)


def key32():
    return base64.b64encode(os.urandom(32)).decode()


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def cpu_seconds(pid):
    """User + system CPU time of a process so far (clock ticks of /proc/PID/stat)."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def loadavg():
    with open("/proc/loadavg") as f:
        return " ".join(f.read().split()[:3])


class Work:
    def __init__(self, args):
        self.args = args
        self.dir = tempfile.mkdtemp(prefix="sb-bench-")
        self.processes = []
        self.results = []
        self.management = {}

    # ---- processes -------------------------------------------------------------------------------

    def start(self, name, argv, cwd=None, env=None):
        log = open(os.path.join(self.dir, f"{name}.log"), "w")
        process = subprocess.Popen(argv, cwd=cwd or self.dir, stdout=log, stderr=subprocess.STDOUT,
                                   env={**os.environ, **(env or {})}, start_new_session=True)
        self.processes.append(process)
        return process

    def stop(self, process):
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()

    def stop_all(self):
        for process in reversed(self.processes):
            self.stop(process)

    def harness(self, *argv):
        result = subprocess.run(["dotnet", HARNESS_DLL, *argv], capture_output=True, text=True, timeout=120)
        if result.returncode != 0:
            raise RuntimeError(f"harness {argv[0]} failed: {result.stderr.strip() or result.stdout.strip()}")
        return result.stdout.strip()

    # ---- setup -----------------------------------------------------------------------------------

    def start_redis(self):
        # redis-server cannot listen on port 0: a candidate port, and another one when something took it meanwhile.
        for _ in range(5):
            self.redis_port = free_port()
            self.redis = self.start("redis", ["redis-server", "--port", str(self.redis_port), "--bind", "127.0.0.1",
                                              "--save", "", "--appendonly", "no"])
            if wait_log(os.path.join(self.dir, "redis.log"), self.redis, "Ready to accept connections"):
                return
            with open(os.path.join(self.dir, "redis.log"), errors="replace") as f:
                if "Address already in use" not in f.read():
                    break
        raise RuntimeError(f"redis-server did not start (see {os.path.join(self.dir, 'redis.log')})")

    def write_broker_files(self):
        self.broker_root = os.path.join(self.dir, "broker")
        os.makedirs(self.broker_root)
        with open(os.path.join(self.broker_root, "secrets.yaml"), "w") as f:
            f.write("# Benchmark secrets: every value is fake.\nsecrets:\n")
            for i in range(SECRETS):
                f.write(f"  s{i:03d}:\n    data:\n      host: postgres-{i:03d}.bench.invalid\n"
                        f"      username: bench_trainer_{i:03d}\n      password: FAKE-bench-password-{i:03d}-0123456789abcdef\n")
        with open(os.path.join(self.broker_root, "policy.yaml"), "w") as f:
            f.write("""policies:
  - name: bench-admins
    appliesTo: { subjects: [admin] }
    rules:
      - paths: ["**"]
        capabilities: [read, list]
  - name: bench-team
    appliesTo: { subjects: [bench-user], authMethods: [dev-token] }
    rules:
      - paths: ["bench/{{identity.team}}/**", "bench/*"]
        capabilities: [read, list]
      - paths: ["bench/break-glass/**"]
        capabilities: [read]
        effect: deny
  - name: bench-workloads
    appliesTo: { authMethods: [jwt], attributes: { namespace: bench } }
    rules:
      - paths: ["bench/*"]
        capabilities: [read, list]
""")
        # A signing key and a Kubernetes service-account token for the JWT scenarios (the broker reads the JWKS file).
        self.harness("jwt", self.dir, JWT_ISSUER, JWT_AUDIENCE)
        shutil.copy(os.path.join(self.dir, "jwks.json"), os.path.join(self.broker_root, "jwks.json"))
        with open(os.path.join(self.dir, "jwt.txt")) as f:
            self.jwt = f.read().strip()
        self.cache_keys = {"NameKey": key32(), "Keys": [{"Id": "bench-1", "Secret": key32(), "Active": True}]}
        self.audit_key = key32()

    def broker_settings(self, skip_l1):
        return {
            "Logging": {"LogLevel": {"Default": "Information", "Microsoft.AspNetCore": "Warning",
                                     "ZiggyCreatures.Caching.Fusion": "Warning", "Microsoft.Hosting.Lifetime": "Information"}},
            # Port 0 for the gRPC and the management listener: each reports the port it got in the log.
            "Urls": "http://127.0.0.1:0",
            "Kestrel": {"EndpointDefaults": {"Protocols": "Http2"}},
            "Broker": {
                "MaxBatchSize": 100,
                "Redis": {"Configuration": f"127.0.0.1:{self.redis_port}"},
                "Cache": {"SkipL1": skip_l1, "Encryption": self.cache_keys},
                "Mounts": [{"Prefix": "bench", "Type": "local", "File": "secrets.yaml", "Cache": {"Ttl": "01:00:00"}}],
                "Policy": {"File": "policy.yaml"},
                # No audit service trims the stream here: without MaxBacklogEntries=0 a long run reaches the default cap
                # (50,000 entries), then events go to the local spool instead and the stream check counts too few.
                "Audit": {"Strict": True, "Key": self.audit_key, "SpoolDirectory": "audit-spool", "MaxBacklogEntries": 0},
                "Auth": {"DevTokens": {"AllowOutsideDevelopment": True, "Tokens": [{
                    "Subject": "bench-user", "Sha256": hashlib.sha256(TOKEN.encode()).hexdigest(),
                    "Attributes": {"team": "alpha"}}]},
                         "Jwt": {"Enabled": True, "Issuer": JWT_ISSUER, "Audiences": [JWT_AUDIENCE], "JwksFile": "jwks.json"}},
                # On but never reached; the per-source budget too (every h2load call comes from 127.0.0.1).
                "RateLimits": {"Enabled": True, "TokenLimit": 1000000, "TokensPerPeriod": 1000000, "ReplenishmentPeriod": "00:00:01",
                               "Source": {"Enabled": True, "TokenLimit": 10000000, "TokensPerPeriod": 10000000}},
            },
        }

    def start_broker(self, name, skip_l1, extra_args=(), dll=None):
        settings = self.broker_settings(skip_l1)
        settings["Broker"]["Management"] = {"Urls": "http://127.0.0.1:0"}
        with open(os.path.join(self.broker_root, "appsettings.json"), "w") as f:
            json.dump(settings, f, indent=2)
        process = self.start(name, ["dotnet", dll or BROKER_DLL, "--contentRoot", self.broker_root, *extra_args], cwd=self.broker_root,
                             env={"ASPNETCORE_ENVIRONMENT": "Production", "DOTNET_ENVIRONMENT": "Production"})
        log = os.path.join(self.dir, f"{name}.log")
        address = wait_address(log, process, "Now listening on")
        self.management[process.pid] = wait_address(log, process, "Management server listening on")
        return process, address

    def metrics(self, pid):
        """The broker's own counters from its Prometheus endpoint: gRPC calls by (method, status) and cache reads by source."""
        text = urllib.request.urlopen(self.management[pid] + "/metrics", timeout=10).read().decode()
        calls, reads = {}, {}
        for line in text.splitlines():
            for name, table, key in (("secretsbroker_grpc_server_requests_total{", calls, ("grpc_method", "grpc_status")),
                                     ("secretsbroker_cache_reads_total{", reads, ("source",))):
                if line.startswith(name):
                    labels = dict(re.findall(r'(\w+)="([^"]*)"', line[:line.rindex("}")]))
                    value = float(line[line.rindex("}") + 1:].split()[0])
                    k = tuple(labels.get(x, "") for x in key)
                    table[k] = table.get(k, 0) + value
        return calls, reads

    def start_baseline(self):
        process = self.start("baseline", ["dotnet", BASELINE_DLL, "--urls", "http://127.0.0.1:0",
                                          "--Baseline:GetSecretResponse", os.path.join(self.dir, "get.pb"),
                                          "--Baseline:BatchResponse", os.path.join(self.dir, "batch.pb")],
                             cwd=os.path.dirname(BASELINE_DLL), env={"ASPNETCORE_ENVIRONMENT": "Production"})
        return process, wait_address(os.path.join(self.dir, "baseline.log"), process, "Now listening on")

    def verify(self, address, request, source, save=None, token=TOKEN):
        out = self.harness("verify", address, token, os.path.join(self.dir, request), source, save or os.path.join(self.dir, "last.pb"))
        print("  " + out, flush=True)

    def stream_last_id(self):
        out = subprocess.run(["redis-cli", "-p", str(self.redis_port), "XREVRANGE", STREAM, "+", "-", "COUNT", "1"],
                             capture_output=True, timeout=30).stdout.split()
        return out[0].decode() if out else "0-0"

    def audit_since(self, after_id):
        last, allowed, other = self.harness("audit", f"127.0.0.1:{self.redis_port}", STREAM, after_id).split()
        return last, int(allowed), int(other)

    # ---- load ------------------------------------------------------------------------------------

    def h2load(self, address, method, request, connections, streams, duration, token=TOKEN):
        log = os.path.join(self.dir, "h2load-requests.log")
        if os.path.exists(log):
            os.remove(log)  # h2load appends
        argv = ["h2load", "-t", "1", "-c", str(connections), "-m", str(streams), "-D", str(duration),
                "-d", os.path.join(self.dir, request), "--log-file", log,
                "-H", "content-type: application/grpc", "-H", "te: trailers", "-H", f"authorization: Bearer {token}",
                f"{address}/secretsbroker.v1.SecretsBroker/{method}"]
        out = subprocess.run(argv, capture_output=True, text=True, timeout=duration + 60).stdout
        counts = re.search(r"requests: (\d+) total, (\d+) started, (\d+) done, (\d+) succeeded, (\d+) failed, (\d+) errored, (\d+) timeout", out)
        codes = re.search(r"status codes: (\d+) 2xx, (\d+) 3xx, (\d+) 4xx, (\d+) 5xx", out)
        rps = re.search(r"finished in [^,]+, ([\d.]+) req/s", out)
        if not (counts and codes and rps):
            raise RuntimeError("unexpected h2load output:\n" + out)
        latencies = []
        with open(log) as f:
            for line in f:
                parts = line.split()
                if len(parts) >= 3 and parts[1] == "200":
                    latencies.append(int(parts[2]) / 1000.0)
        latencies.sort()

        def pct(p):
            return latencies[min(len(latencies) - 1, int(p / 100.0 * len(latencies)))] if latencies else float("nan")

        return {
            "done": int(counts.group(3)), "succeeded": int(counts.group(4)), "failed": int(counts.group(5)),
            "errored": int(counts.group(6)), "timeout": int(counts.group(7)), "non2xx": sum(int(codes.group(i)) for i in (2, 3, 4)),
            "rps": float(rps.group(1)), "mean_ms": statistics.fmean(latencies) if latencies else float("nan"),
            "p50_ms": pct(50), "p99_ms": pct(99), "latencies": latencies,
        }

    def measure(self, address, method, request, mode, server_pid, broker=False, per_request=1, source=None, token=TOKEN):
        """One h2load run against one server, with its checks; returns counters, latencies and CPU per request."""
        connections, streams = (self.args.connections, self.args.streams) if mode == "load" else (1, 1)
        duration = self.args.duration if mode == "load" else self.args.latency_duration
        after = self.stream_last_id() if broker else None
        metrics_before = self.metrics(server_pid) if broker else None
        rss = []
        stop = threading.Event()

        def sample():
            while not stop.wait(0.25):
                try:
                    rss.append(rss_kib(server_pid))
                except OSError:
                    return

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        cpu_before = (cpu_seconds(server_pid), cpu_seconds(self.redis.pid))
        run = self.h2load(address, method, request, connections, streams, duration, token)
        cpu_after = (cpu_seconds(server_pid), cpu_seconds(self.redis.pid))
        stop.set()
        sampler.join()
        run.update(c=connections, m=streams, seconds=duration, rss_max_kib=max(rss) if rss else 0,
                   cpu_s=cpu_after[0] - cpu_before[0], redis_cpu_s=cpu_after[1] - cpu_before[1])
        problems = []
        if run["failed"] or run["errored"] or run["timeout"] or run["non2xx"]:
            problems.append(f"h2load: {run['failed']} failed, {run['errored']} errored, {run['timeout']} timeout, {run['non2xx']} non-2xx")
        if run["succeeded"] == 0:
            problems.append("h2load: no request succeeded")
        if broker:
            time.sleep(0.5)
            _, allowed, other = self.audit_since(after)
            run.update(audit_allowed=allowed, audit_other=other)
            if other:
                problems.append(f"audit: {other} events that are not allowed/OK (failed calls answered with HTTP 200)")
            # Strict audit: a served secret's event is in the stream before the answer leaves, so every
            # succeeded request has its events; calls still in flight when h2load stopped may add a few more.
            if allowed < run["succeeded"] * per_request:
                problems.append(f"audit: {allowed} allowed events for {run['succeeded']} x {per_request} served secrets")
            # The broker's own metrics: calls by the grpc-status it sent, cache reads by the layer that answered.
            (calls0, reads0), (calls1, reads1) = metrics_before, self.metrics(server_pid)
            delta = {k: v - calls0.get(k, 0) for k, v in calls1.items() if k[0] == method}
            ok_calls = delta.get((method, "OK"), 0)
            not_ok = {k[1]: v for k, v in delta.items() if k[1] != "OK" and v}
            # h2load resets the streams still open when its time is up; the broker records those as CANCELLED
            # (or UNKNOWN when the reset hit the response), and h2load counts them nowhere. At most c x m.
            abandoned = sum(not_ok.pop(status, 0) for status in ("CANCELLED", "UNKNOWN"))
            run["abandoned"] = abandoned
            if abandoned > connections * streams:
                problems.append(f"metrics: {abandoned:.0f} calls cancelled, more than the {connections * streams} h2load can leave open")
            source_reads = reads1.get((source,), 0) - reads0.get((source,), 0)
            run.update(metrics_ok=ok_calls, metrics_not_ok=sum(not_ok.values()), metrics_source_reads=source_reads)
            if not_ok:
                problems.append(f"metrics: calls answered with {not_ok}")
            if ok_calls < run["succeeded"]:
                problems.append(f"metrics: {ok_calls:.0f} OK calls for {run['succeeded']} succeeded requests")
            if source_reads < run["succeeded"] * per_request:
                problems.append(f"metrics: {source_reads:.0f} cache reads from {source} for {run['succeeded']} x {per_request} secrets")
        run["problems"] = problems
        return run

    def wanted(self, label):
        """Whether --scenarios (comma-separated, each matched exactly against the label) selects this scenario."""
        scenarios = getattr(self.args, "scenarios", "")
        return not scenarios or label in [s.strip() for s in scenarios.split(";")]

    def pair(self, label, method, request, mode, baseline, broker, per_request=1, source="L1", token=TOKEN, compare=None):
        """Baseline and broker in turn, --rounds times, so both see the same machine; the ratio is the median of the rounds' ratios.
        With ``compare`` (the --compare-dll broker) that broker runs third in every round, and is reported on a row of its own."""
        if not self.wanted(label):
            return None
        (baseline_process, baseline_address), (broker_process, broker_address) = baseline, broker
        rounds, others = [], []
        for _ in range(self.args.rounds):
            # The same request bytes, token included, go to both servers; the baseline ignores the token.
            base = self.measure(baseline_address, method, request, mode, baseline_process.pid, token=token)
            bro = self.measure(broker_address, method, request, mode, broker_process.pid, broker=True, per_request=per_request, source=source, token=token)
            rounds.append((base, bro))
            if compare:
                others.append((base, self.measure(compare[1], method, request, mode, compare[0].pid, broker=True, per_request=per_request,
                                                  source=source, token=token)))
        result = self.summarize(label, mode, per_request, rounds)
        if others:
            self.summarize(label + " [compare build]", mode, per_request, others)
        return result

    def summarize(self, label, mode, per_request, rounds):

        def aggregate(runs):
            latencies = sorted(l for r in runs for l in r["latencies"])
            done = sum(r["done"] for r in runs)

            def pct(p):
                return latencies[min(len(latencies) - 1, int(p / 100.0 * len(latencies)))] if latencies else float("nan")

            return {
                "rps": sum(r["succeeded"] for r in runs) / sum(r["seconds"] for r in runs),
                "round_rps": [round(r["rps"]) for r in runs],
                "succeeded": sum(r["succeeded"] for r in runs),
                "mean_ms": statistics.fmean(latencies) if latencies else float("nan"), "p50_ms": pct(50), "p99_ms": pct(99),
                "cpu_us": sum(r["cpu_s"] for r in runs) * 1e6 / max(1, done),
                "redis_cpu_us": sum(r["redis_cpu_s"] for r in runs) * 1e6 / max(1, done),
                "rss_max_kib": max(r["rss_max_kib"] for r in runs),
                "audit_allowed": sum(r.get("audit_allowed", 0) for r in runs), "audit_other": sum(r.get("audit_other", 0) for r in runs),
                "metrics_ok": sum(r.get("metrics_ok", 0) for r in runs), "metrics_not_ok": sum(r.get("metrics_not_ok", 0) for r in runs),
                "problems": [p for r in runs for p in r["problems"]],
            }

        result = {"label": label, "mode": mode, "c": rounds[0][0]["c"], "m": rounds[0][0]["m"], "per_request": per_request,
                  "baseline": aggregate([b for b, _ in rounds]), "broker": aggregate([k for _, k in rounds]),
                  "ratio": statistics.median(k["rps"] / b["rps"] for b, k in rounds if b["rps"] > 0)}
        result["ok"] = not result["baseline"]["problems"] and not result["broker"]["problems"]
        self.results.append(result)
        b, k = result["baseline"], result["broker"]
        status = "ok" if result["ok"] else "FAILED: " + "; ".join(b["problems"] + k["problems"])
        print(f"  {label:<36} {mode:<7} baseline {b['rps']:>7.0f} req/s {b['round_rps']} p50 {b['p50_ms']:.3f} ms | broker {k['rps']:>7.0f} req/s "
              f"{k['round_rps']} p50 {k['p50_ms']:.3f} p99 {k['p99_ms']:.3f} ms cpu/req {k['cpu_us']:.0f} us (+redis {k['redis_cpu_us']:.0f}) "
              f"vs {b['cpu_us']:.0f} | ratio {result['ratio']:.2f}x | audit {k['audit_allowed']}/{k['audit_other']} | metrics {k['metrics_ok']:.0f}/{k['metrics_not_ok']:.0f} | {status}", flush=True)
        return result

    # ---- the run ---------------------------------------------------------------------------------

    def run(self):
        args = self.args
        self.loadavg_start = loadavg()
        print(f"bench dir {self.dir}; loadavg at start {self.loadavg_start}", flush=True)
        self.harness("requests", self.dir, "bench", str(SECRETS))
        self.start_redis()
        self.write_broker_files()

        print("broker (L1 + encrypted Redis L2, strict audit to the Redis stream, dev-token auth, policy, rate limits):", flush=True)
        broker = self.start_broker("broker", skip_l1=False)
        process, address = broker
        self.rss_start_kib = rss_kib(process.pid)
        self.verify(address, "batch.grpc", "BACKEND")
        self.verify(address, "batch.grpc", "L1", os.path.join(self.dir, "batch.pb"))
        self.verify(address, "get.grpc", "L1", os.path.join(self.dir, "get.pb"))
        self.verify(address, "miss.grpc", "BACKEND")
        time.sleep(2)
        self.rss_idle_kib = rss_kib(process.pid)

        compare = None
        if args.compare_dll:
            print(f"compare broker, same settings, from {args.compare_dll}:", flush=True)
            compare = self.start_broker("broker-compare", skip_l1=False, dll=os.path.abspath(args.compare_dll))
            self.verify(compare[1], "get.grpc", "L2")  # the first broker put the entry in the shared Redis
            self.verify(compare[1], "get.grpc", "L1")
            self.verify(compare[1], "get.grpc", "L1", token=self.jwt)

        broker_l2 = broker_jwt_uncached = None
        if self.wanted("GetSecret L2 hit (SkipL1)"):
            print("broker with Broker:Cache:SkipL1=true (every cached read from the encrypted Redis L2):", flush=True)
            broker_l2 = self.start_broker("broker-l2", skip_l1=True)
            self.verify(broker_l2[1], "get.grpc", "L2")

        if self.wanted("GetSecret L1 hit, JWT, no validation cache"):
            print("broker with Broker:Auth:Jwt:ValidationCacheTtl=0 (every JWT validated: JSON parse and RS256 check per call):", flush=True)
            broker_jwt_uncached = self.start_broker("broker-jwt-uncached", skip_l1=False, extra_args=["--Broker:Auth:Jwt:ValidationCacheTtl=00:00:00"])
            self.verify(broker_jwt_uncached[1], "get.grpc", "L2", token=self.jwt)
            self.verify(broker_jwt_uncached[1], "get.grpc", "L1", token=self.jwt)
        self.verify(address, "get.grpc", "L1", token=self.jwt)

        baseline = self.start_baseline()
        self.verify(baseline[1], "get.grpc", "L1")
        self.verify(baseline[1], "batch.grpc", "L1")

        # Warm the servers' JIT and connection paths before anything is measured. Tiered compilation
        # (with PGO) keeps recompiling the broker's larger call graph for several seconds under load; a
        # shorter warm-up measured the first round of the broker 20-40 % below its later rounds.
        brokers = [b[1] for b in (broker, compare) if b]
        for server in [baseline[1], *brokers, *([broker_l2[1]] if broker_l2 else [])]:
            self.h2load(server, "GetSecret", "get.grpc", args.connections, args.streams, args.warmup)
        if self.wanted("BatchGetSecrets(100) cached"):
            for server in [baseline[1], *brokers]:
                self.h2load(server, "BatchGetSecrets", "batch.grpc", args.connections, args.streams, max(2, args.warmup // 2))
        for server in [*brokers, *([broker_jwt_uncached[1]] if broker_jwt_uncached else [])]:
            self.h2load(server, "GetSecret", "get.grpc", args.connections, args.streams, max(2, args.warmup // 2), self.jwt)

        print(f"rounds of baseline then broker, {args.rounds} per scenario:", flush=True)
        for mode in [m.strip() for m in getattr(args, "modes", "load,latency").split(",")]:
            self.pair("GetSecret L1 hit", "GetSecret", "get.grpc", mode, baseline, broker, compare=compare)
            self.pair("BatchGetSecrets(100) cached", "BatchGetSecrets", "batch.grpc", mode, baseline, broker, SECRETS, compare=compare)
            self.pair("GetSecret miss (bypass_cache)", "GetSecret", "miss.grpc", mode, baseline, broker, source="Backend", compare=compare)
            self.pair("GetSecret L2 hit (SkipL1)", "GetSecret", "get.grpc", mode, baseline, broker_l2, source="L2")
            if mode == "load":
                # Production authentication: a Kubernetes service-account JWT, with and without the validation cache.
                self.pair("GetSecret L1 hit, JWT auth", "GetSecret", "get.grpc", mode, baseline, broker, token=self.jwt, compare=compare)
                self.pair("GetSecret L1 hit, JWT, no validation cache", "GetSecret", "get.grpc", mode, baseline, broker_jwt_uncached, token=self.jwt)
        self.verify(address, "get.grpc", "L1")
        self.verify(address, "miss.grpc", "BACKEND")
        if broker_l2:
            self.verify(broker_l2[1], "get.grpc", "L2")
        self.rss_after_kib = rss_kib(process.pid)
        self.loadavg_end = loadavg()

    def report(self):
        a = self.args
        lines = [f"h2load -t 1; load: -c {a.connections} -m {a.streams}, latency: -c 1 -m 1; each scenario {a.rounds} rounds of "
                 f"baseline then broker, {a.duration} s (load) / {a.latency_duration} s (latency) each. "
                 f"loadavg start {self.loadavg_start}, end {self.loadavg_end} (2 cores).", "",
                 "| scenario | mode | baseline req/s | broker req/s | ratio | broker mean ms | p50 ms | p99 ms | baseline p50 ms | "
                 "CPU us/req broker (+redis) / baseline | audit allowed / other | metrics OK / not OK | check |",
                 "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- | --- | --- |"]
        for r in self.results:
            b, k = r["baseline"], r["broker"]
            ok = r["ok"]
            lines.append(f"| {r['label']} | {r['mode']} (c{r['c']} m{r['m']}) | {b['rps']:.0f} | {format(k['rps'], '.0f') if ok else 'FAILED'} | "
                         f"{format(r['ratio'], '.2f') + 'x' if ok else '-'} | {k['mean_ms']:.3f} | {k['p50_ms']:.3f} | {k['p99_ms']:.3f} | "
                         f"{b['p50_ms']:.3f} | {k['cpu_us']:.0f} (+{k['redis_cpu_us']:.0f}) / {b['cpu_us']:.0f} | "
                         f"{k['audit_allowed']} / {k['audit_other']} | {k['metrics_ok']:.0f} / {k['metrics_not_ok']:.0f} | {'ok' if ok else '; '.join(b['problems'] + k['problems'])} |")
        peaks = [r["broker"]["rss_max_kib"] for r in self.results
                 if r["label"] not in ("GetSecret L2 hit (SkipL1)", "GetSecret L1 hit, JWT, no validation cache") and "[compare build]" not in r["label"]] or [0]
        lines.append("")
        lines.append(f"Round-to-round spread of the baseline (noise): " + "; ".join(
            f"{r['label']} {r['mode']}: {min(r['baseline']['round_rps'])}-{max(r['baseline']['round_rps'])} req/s" for r in self.results))
        lines.append(f"Broker RSS (VmRSS): {self.rss_start_kib / 1024:.0f} MiB after start, {self.rss_idle_kib / 1024:.0f} MiB idle after the "
                     f"warm-up reads, {max(peaks) / 1024:.0f} MiB peak under load, {self.rss_after_kib / 1024:.0f} MiB after the runs.")
        text = "\n".join(lines)
        print("\n" + text)
        os.makedirs(self.args.out, exist_ok=True)
        with open(os.path.join(self.args.out, "load.md"), "w") as f:
            f.write(text + "\n")
        with open(os.path.join(self.args.out, "load.json"), "w") as f:
            json.dump(self.results, f, indent=1)
        return all(r["ok"] for r in self.results)


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--duration", type=int, default=int(os.environ.get("BENCH_DURATION", "5")), help="seconds per load run")
    parser.add_argument("--latency-duration", type=int, default=int(os.environ.get("BENCH_LATENCY_DURATION", "3")), help="seconds per latency run")
    parser.add_argument("--rounds", type=int, default=int(os.environ.get("BENCH_ROUNDS", "3")), help="baseline/broker alternations per scenario")
    parser.add_argument("--warmup", type=int, default=int(os.environ.get("BENCH_WARMUP", "8")), help="seconds of GetSecret load per server before measuring")
    parser.add_argument("--connections", type=int, default=4)
    parser.add_argument("--streams", type=int, default=16, help="concurrent streams per connection")
    parser.add_argument("--out", default=os.path.join(ROOT, "tests/Benchmarks/artifacts"))
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory (logs, configs)")
    parser.add_argument("--scenarios", default="", help="semicolon-separated scenario labels to run (e.g. 'GetSecret L1 hit'); default all")
    parser.add_argument("--modes", default="load,latency", help="load (c x m), latency (c1 m1) or both")
    parser.add_argument("--broker-dll", default=None, help="the broker build to measure (default: this tree's Release build)")
    parser.add_argument("--compare-dll", help="a second broker build (e.g. an older commit's), measured with the same settings in every round, third")
    args = parser.parse_args()
    if args.broker_dll:
        globals()["BROKER_DLL"] = os.path.abspath(args.broker_dll)
    for tool in ("h2load", "redis-server", "dotnet"):
        if shutil.which(tool) is None:
            sys.exit(f"{tool} is not installed (h2load: apt-get install -y nghttp2-client; redis-server: apt-get install -y redis-server)")
    work = Work(args)
    try:
        work.run()
        ok = work.report()
    finally:
        work.stop_all()
        if not args.keep:
            shutil.rmtree(work.dir, ignore_errors=True)
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
