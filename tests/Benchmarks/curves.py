#!/usr/bin/env python3
"""Cost curves (issue 22, docs/benchmarks.md "Cost curves"): the broker's read path as its work grows.

Each curve runs two brokers that differ only in the size of one thing (policies, cached secrets, callers), on one
Redis, and alternates rounds between them so both see the same machine. Figures are ratios of the large case to the
small one, per round, and the median of those; CPU per request is the broker process's CPU seconds (utime+stime)
over the requests it answered. The last part measures the cached GetSecret with everything on against the bare gRPC
baseline, as load.py does. Reuses load.py's processes, checks and h2load runner; needs a Release build (run.sh).

    python3 tests/Benchmarks/curves.py [--only policies,secrets,callers,bare] [--rounds 3] [--duration 5]
"""
import argparse
import hashlib
import json
import os
import re
import shutil
import statistics
import sys
import threading
import time
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import load  # noqa: E402  (the read-path benchmark: processes, checks, h2load)
from load import JWT_AUDIENCE, JWT_ISSUER, TOKEN, Work, cpu_seconds, loadavg, rss_kib  # noqa: E402

CURVES = {
    "policies": ("policies", 10, 10_000),
    "secrets": ("cached secrets", 100, 100_000),
    "callers": ("callers", 10, 10_000),
}


def team_policies(teams):
    """The same file as tests/Benchmarks/Micro/PolicyCurveBenchmarks.TeamPolicies, plus the JWT workloads' policy."""
    text = """policies:
  - name: platform-admins
    appliesTo: { subjects: [admin] }
    rules:
      - paths: ["**"]
        capabilities: [read, list]
  - name: break-glass
    rules:
      - paths: ["bench/break-glass/**"]
        capabilities: [read]
        effect: deny
  - name: bench-workloads
    appliesTo: { authMethods: [jwt], attributes: { namespace: bench } }
    rules:
      - paths: ["bench/*"]
        capabilities: [read, list]
"""
    for i in range(teams):
        text += f"""  - name: team-{i:05d}
    appliesTo: {{ attributes: {{ team: team-{i:05d} }} }}
    rules:
      - paths: ["bench/{{{{identity.team}}}}/**", "bench/*"]
        capabilities: [read, list]
      - paths: ["bench/{{{{identity.team}}}}/frozen/**"]
        capabilities: [read]
        effect: deny
"""
    return text


def secrets_yaml(count):
    lines = ["# Benchmark secrets: every value is fake.", "secrets:"]
    for i in range(count):
        lines.append(f"  s{i:03d}:\n    data:\n      host: postgres-{i:03d}.bench.invalid\n      username: bench_trainer_{i:03d}\n"
                     f"      password: FAKE-bench-password-{i:03d}-0123456789abcdef")
    return "\n".join(lines) + "\n"


def gc_heap_bytes(management):
    """The GC heap after the last collection, from the broker's Prometheus endpoint (OpenTelemetry runtime metrics)."""
    text = urllib.request.urlopen(management + "/metrics", timeout=10).read().decode()
    total = 0.0
    for line in text.splitlines():
        if line.startswith("dotnet_gc_last_collection_heap_size_bytes"):
            total += float(line.split()[1] if "}" not in line else line[line.rindex("}") + 1:].split()[0])
    return total


class Curves(Work):
    def setup(self):
        self.harness("jwt", self.dir, JWT_ISSUER, JWT_AUDIENCE, "10000")
        with open(os.path.join(self.dir, "jwt.txt")) as f:
            self.jwt = f.read().strip()
        with open(os.path.join(self.dir, "jwts.txt")) as f:
            tokens = [line.strip() for line in f if line.strip()]
        for count in (10, 10_000):
            with open(os.path.join(self.dir, f"jwts-{count}.txt"), "w") as f:
                f.write("\n".join(tokens[:count]) + "\n")
        with open(os.path.join(self.dir, "dev-token.txt"), "w") as f:
            f.write(TOKEN + "\n")
        self.cache_keys = {"NameKey": load.key32(), "Keys": [{"Id": "bench-1", "Secret": load.key32(), "Active": True}]}
        self.audit_key = load.key32()

    def start_curve_broker(self, name, policies=10, secrets=100, extra=()):
        """A broker in a directory of its own (appsettings.json is reloaded on change, so brokers must not share one)."""
        root = os.path.join(self.dir, name)
        os.makedirs(root)
        with open(os.path.join(root, "secrets.yaml"), "w") as f:
            f.write(secrets_yaml(secrets))
        with open(os.path.join(root, "policy.yaml"), "w") as f:
            f.write(team_policies(policies))
        shutil.copy(os.path.join(self.dir, "jwks.json"), os.path.join(root, "jwks.json"))
        settings = self.broker_settings(skip_l1=False)
        settings["Broker"]["Management"] = {"Urls": "http://127.0.0.1:0"}
        # Its own Redis keys and backplane channel: the two brokers of a curve share a Redis but no cache entries.
        settings["Broker"]["Cache"]["KeyPrefix"] = name
        settings["Broker"]["Auth"]["DevTokens"]["Tokens"] = [{"Subject": "bench-user", "Sha256": hashlib.sha256(TOKEN.encode()).hexdigest(),
                                                             "Attributes": {"team": "team-00005"}}]
        with open(os.path.join(root, "appsettings.json"), "w") as f:
            json.dump(settings, f, indent=2)
        process = self.start(name, ["dotnet", load.BROKER_DLL, "--contentRoot", root, *extra], cwd=root,
                             env={"ASPNETCORE_ENVIRONMENT": "Production", "DOTNET_ENVIRONMENT": "Production"})
        log = os.path.join(self.dir, f"{name}.log")
        address = load.wait_address(log, process, "Now listening on", 180)
        self.management[process.pid] = load.wait_address(log, process, "Management server listening on", 180)
        return process, address

    def client_load(self, address, seconds, secrets, tokens_file):
        out = self.harness("load", address, str(seconds), str(self.args.connections), str(self.args.streams), "bench", str(secrets), tokens_file)
        ok, failed, elapsed = out.split()
        return int(ok), int(failed), float(elapsed)

    def measure_client(self, broker, secrets, tokens_file):
        """One client run against one broker, with load.py's checks: audit events and the broker's own metrics."""
        process, address = broker
        after = self.stream_last_id()
        metrics_before = self.metrics(process.pid)
        rss, stop = [], threading.Event()
        sampler = threading.Thread(target=lambda: [rss.append(rss_kib(process.pid)) for _ in iter(lambda: stop.wait(0.25), True)], daemon=True)
        sampler.start()
        cpu0, redis0 = cpu_seconds(process.pid), cpu_seconds(self.redis.pid)
        ok, failed, elapsed = self.client_load(address, self.args.duration, secrets, tokens_file)
        cpu1, redis1 = cpu_seconds(process.pid), cpu_seconds(self.redis.pid)
        stop.set()
        sampler.join()
        problems = [f"client: {failed} calls failed or not from L1"] if failed else []
        time.sleep(0.5)
        _, allowed, other = self.audit_since(after)
        if other or allowed < ok:
            problems.append(f"audit: {allowed} allowed / {other} other events for {ok} reads")
        (calls0, reads0), (calls1, reads1) = metrics_before, self.metrics(process.pid)
        ok_calls = calls1.get(("GetSecret", "OK"), 0) - calls0.get(("GetSecret", "OK"), 0)
        l1 = reads1.get(("L1",), 0) - reads0.get(("L1",), 0)
        if ok_calls < ok or l1 < ok:
            problems.append(f"metrics: {ok_calls:.0f} OK calls, {l1:.0f} L1 reads for {ok} reads")
        return {"succeeded": ok, "rps": ok / elapsed, "cpu_s": cpu1 - cpu0, "redis_cpu_s": redis1 - redis0, "rss_max_kib": max(rss or [0]),
                "problems": problems}

    def measure_h2load(self, broker, *_):
        process, address = broker
        run = self.measure(address, "GetSecret", "get.grpc", "load", process.pid, broker=True, source="L1")
        # When h2load's time is up it resets the streams still open. A reset that lands while the response is written
        # escapes the pipeline, and the broker's metrics middleware labels it INTERNAL (GrpcMetricsMiddleware: any
        # exception). With h2load reporting no failure and the audit complete, up to c x m of those are such resets.
        limit = self.args.connections * self.args.streams
        match = [p for p in run["problems"] if re.fullmatch(r"metrics: calls answered with \{'INTERNAL': (\d+)\.0\}", p)]
        for problem in match:
            reset = int(re.search(r"(\d+)\.0", problem).group(1))
            if reset + run.get("abandoned", 0) <= limit and not run["failed"] and not run["errored"]:
                run["problems"].remove(problem)
                self.resets = getattr(self, "resets", 0) + reset
        return {"succeeded": run["succeeded"], "rps": run["rps"], "cpu_s": run["cpu_s"], "redis_cpu_s": run["redis_cpu_s"],
                "rss_max_kib": run["rss_max_kib"], "problems": run["problems"]}

    def curve(self, key, small, large, measure, small_args, large_args):
        what, n_small, n_large = CURVES[key]
        start = loadavg()
        rounds = []
        for _ in range(self.args.rounds):
            rounds.append((measure(small, *small_args), measure(large, *large_args)))
        end = loadavg()

        def cpu_us(runs):
            return sum(r["cpu_s"] for r in runs) * 1e6 / max(1, sum(r["succeeded"] for r in runs))

        smalls, larges = [s for s, _ in rounds], [k for _, k in rounds]
        result = {
            "curve": key, "what": what, "small": n_small, "large": n_large, "loadavg_start": start, "loadavg_end": end,
            "rps_small": [round(r["rps"]) for r in smalls], "rps_large": [round(r["rps"]) for r in larges],
            "throughput_ratio": statistics.median(k["rps"] / s["rps"] for s, k in rounds),
            "cpu_us_small": cpu_us(smalls), "cpu_us_large": cpu_us(larges),
            "cpu_ratio": statistics.median((k["cpu_s"] / k["succeeded"]) / (s["cpu_s"] / s["succeeded"]) for s, k in rounds),
            "rss_max_mib_small": max(r["rss_max_kib"] for r in smalls) / 1024, "rss_max_mib_large": max(r["rss_max_kib"] for r in larges) / 1024,
            "problems": [p for r in smalls + larges for p in r["problems"]],
        }
        self.results.append(result)
        status = "ok" if not result["problems"] else "FAILED: " + "; ".join(result["problems"][:5])
        print(f"  {what}: {n_small} -> {n_large}: req/s {result['rps_small']} -> {result['rps_large']} = {result['throughput_ratio']:.2f}x; "
              f"CPU/req {result['cpu_us_small']:.1f} -> {result['cpu_us_large']:.1f} us = {result['cpu_ratio']:.2f}x; "
              f"peak RSS {result['rss_max_mib_small']:.0f} -> {result['rss_max_mib_large']:.0f} MiB; loadavg {start} -> {end} | {status}", flush=True)
        return result

    def memory(self, label, small, large, count):
        """Idle memory of two brokers after their warm-up, and the difference per item."""
        time.sleep(3)
        rss = [rss_kib(p.pid) * 1024 for p in (small[0], large[0])]
        heap = [gc_heap_bytes(self.management[p.pid]) for p in (small[0], large[0])]
        entry = {"memory": label, "count": count, "rss_small_mib": rss[0] / 2**20, "rss_large_mib": rss[1] / 2**20,
                 "rss_per_item_bytes": (rss[1] - rss[0]) / count, "heap_small_mib": heap[0] / 2**20, "heap_large_mib": heap[1] / 2**20,
                 "heap_per_item_bytes": (heap[1] - heap[0]) / count if heap[0] and heap[1] else None}
        self.results.append(entry)
        print(f"  memory {label}: RSS {entry['rss_small_mib']:.0f} -> {entry['rss_large_mib']:.0f} MiB, {entry['rss_per_item_bytes']:.0f} B per item; "
              f"GC heap {entry['heap_small_mib']:.0f} -> {entry['heap_large_mib']:.0f} MiB"
              + (f", {entry['heap_per_item_bytes']:.0f} B per item" if entry["heap_per_item_bytes"] is not None else ""), flush=True)

    def warm(self, brokers, measure_args):
        for broker, args in zip(brokers, measure_args):
            self.harness("load", broker[1], str(self.args.warmup), str(self.args.connections), str(self.args.streams), "bench", *args)

    def run(self):
        args = self.args
        only = set(args.only.split(","))
        self.loadavg_start = loadavg()
        print(f"bench dir {self.dir}; loadavg at start {self.loadavg_start}", flush=True)
        self.harness("requests", self.dir, "bench", "100")
        self.start_redis()
        self.setup()
        dev = os.path.join(self.dir, "dev-token.txt")

        if "policies" in only:
            print("policies: 10 and 10,000 per-team policies with identity templates (h2load, one caller, one cached secret):", flush=True)
            small, large = self.start_curve_broker("p10", policies=10), self.start_curve_broker("p10000", policies=10_000)
            for broker in (small, large):
                self.verify(broker[1], "get.grpc", "BACKEND")
                self.verify(broker[1], "get.grpc", "L1")
                self.h2load(broker[1], "GetSecret", "get.grpc", args.connections, args.streams, args.warmup)
            self.curve("policies", small, large, self.measure_h2load, (), ())
            self.stop(small[0]), self.stop(large[0])

        if "secrets" in only:
            print("cached secrets: 100 and 100,000 read uniformly (harness client, one dev-token caller):", flush=True)
            small, large = self.start_curve_broker("s100", secrets=100), self.start_curve_broker("s100000", secrets=100_000)
            # The large broker before and after its secrets are cached: the same process, so its local mount's own copy
            # of the 100,000 secrets (read from the file at start) is not counted as cache.
            time.sleep(3)
            before = (rss_kib(large[0].pid) * 1024, gc_heap_bytes(self.management[large[0].pid]))
            for broker, count in ((small, 100), (large, 100_000)):
                print("  " + self.harness("warm", broker[1], TOKEN, "bench", str(count)), flush=True)
            time.sleep(3)
            after = (rss_kib(large[0].pid) * 1024, gc_heap_bytes(self.management[large[0].pid]))
            entry = {"memory": "per cached secret, one broker before/after caching 100,000", "rss_per_item_bytes": (after[0] - before[0]) / 100_000,
                     "heap_per_item_bytes": (after[1] - before[1]) / 100_000, "rss_mib": [before[0] / 2**20, after[0] / 2**20],
                     "heap_mib": [before[1] / 2**20, after[1] / 2**20]}
            self.results.append(entry)
            print(f"  {entry}", flush=True)
            self.memory("per cached secret (two brokers: 100 vs 100,000 secrets, mount file included)", small, large, 100_000 - 100)
            self.warm((small, large), (("100", dev), ("100000", dev)))
            self.curve("secrets", small, large, self.measure_client, (100, dev), (100_000, dev))
            self.memory("per cached secret, after the runs", small, large, 100_000 - 100)
            self.stop(small[0]), self.stop(large[0])

        if "callers" in only:
            print("callers: 10 and 10,000 service-account JWTs, one each per call at random (harness client, 100 cached secrets):", flush=True)
            # Validated tokens are remembered for the longest TTL allowed, so the runs measure the cached steady state,
            # not the RS256 revalidation each token needs once per TTL (default 1 minute).
            ttl = ["--Broker:Auth:Jwt:ValidationCacheTtl=01:00:00"]
            small, large = self.start_curve_broker("c10", extra=ttl), self.start_curve_broker("c10000", extra=ttl)
            tokens = {n: os.path.join(self.dir, f"jwts-{n}.txt") for n in (10, 10_000)}
            time.sleep(3)
            rss_before = [rss_kib(b[0].pid) for b in (small, large)]
            for broker, n in ((small, 10), (large, 10_000)):
                print("  " + self.harness("warm", broker[1], TOKEN, "bench", "100"), flush=True)
                print("  " + self.harness("warm-callers", broker[1], tokens[n], "bench"), flush=True)
            self.warm((small, large), (("100", tokens[10]), ("100", tokens[10_000])))
            self.curve("callers", small, large, self.measure_client, (100, tokens[10]), (100, tokens[10_000]))
            self.memory("per caller (after the runs)", small, large, 10_000 - 10)
            print(f"  RSS before the callers' first calls: {rss_before[0] / 1024:.0f} / {rss_before[1] / 1024:.0f} MiB", flush=True)
            self.stop(small[0]), self.stop(large[0])

        if "bare" in only:
            print("everything on against the bare gRPC baseline (load.py's GetSecret L1 hit, dev token and JWT):", flush=True)
            broker = self.start_curve_broker("everything-on")
            self.verify(broker[1], "batch.grpc", "BACKEND")
            self.verify(broker[1], "batch.grpc", "L1", os.path.join(self.dir, "batch.pb"))
            self.verify(broker[1], "get.grpc", "L1", os.path.join(self.dir, "get.pb"))
            self.verify(broker[1], "get.grpc", "L1", token=self.jwt)
            baseline = self.start_baseline()
            for server in (baseline[1], broker[1]):
                self.h2load(server, "GetSecret", "get.grpc", args.connections, args.streams, args.warmup)
            self.pair("GetSecret L1 hit", "GetSecret", "get.grpc", "load", baseline, broker)
            self.pair("GetSecret L1 hit, JWT auth", "GetSecret", "get.grpc", "load", baseline, broker, token=self.jwt)
        self.loadavg_end = loadavg()

    def report(self):
        text = json.dumps([{k: v for k, v in r.items() if k not in ("baseline", "broker")} | (
            {"baseline_rps": r["baseline"]["rps"], "broker_rps": r["broker"]["rps"], "broker_cpu_us": r["broker"]["cpu_us"],
             "baseline_cpu_us": r["baseline"]["cpu_us"], "baseline_round_rps": r["baseline"]["round_rps"], "broker_round_rps": r["broker"]["round_rps"]}
            if "baseline" in r else {}) for r in self.results], indent=1, default=str)
        print(f"\nloadavg start {self.loadavg_start}, end {self.loadavg_end}\n{text}")
        os.makedirs(self.args.out, exist_ok=True)
        with open(os.path.join(self.args.out, "curves.json"), "w") as f:
            f.write(text + "\n")
        return all(not r.get("problems") and r.get("ok", True) for r in self.results)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", default="policies,secrets,callers,bare")
    parser.add_argument("--duration", type=int, default=int(os.environ.get("BENCH_DURATION", "5")), help="seconds per run")
    parser.add_argument("--rounds", type=int, default=int(os.environ.get("BENCH_ROUNDS", "3")), help="small/large alternations per curve")
    parser.add_argument("--warmup", type=int, default=int(os.environ.get("BENCH_WARMUP", "8")), help="seconds of load per broker before measuring")
    parser.add_argument("--connections", type=int, default=4)
    parser.add_argument("--streams", type=int, default=16, help="calls in flight per connection")
    parser.add_argument("--out", default=os.path.join(load.ROOT, "tests/Benchmarks/artifacts"))
    parser.add_argument("--keep", action="store_true")
    parser.add_argument("--broker-dll", default=None, help="the broker build to measure (default: this tree's Release build)")
    args = parser.parse_args()
    args.latency_duration = args.duration
    if args.broker_dll:
        load.BROKER_DLL = os.path.abspath(args.broker_dll)
    work = Curves(args)
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
