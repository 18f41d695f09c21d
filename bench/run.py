"""Side-by-side benchmark (a program that prints measured numbers; it asserts nothing about speed).

One Envoy (--concurrency 1) with one listener per filter variant, all on the same route and the
same upstream (a second Envoy answering with a direct response); wrk as the client. Listeners:

  none         no CORS filter
  envoy_cors   Envoy's own envoy.filters.http.cors
  ours         our filter, the same policy (documented defaults: no route-metadata lookup)
  floor        bench/floor: a near-empty proxy-wasm filter (the floor of any Wasm filter; built
               by `make bench` into build/cors_floor.wasm with the same wasm-opt step as ours)
  ours_skip    ours wrapped in ExtensionWithMatcher + SkipFilter when there is no Origin
  ours_routes  ours with the policy in a `routes` map (one more host call: the route name)
  ours_routes_meta  the same plus `route_metadata_namespace: cors` (one more: route metadata)
  ours_so      ours as an Envoy dynamic module (build/libcors.so), the same configuration
  ours_1route / ours_10k   ours keyed by route name: a 1-route, 1-origin config against a
               10,000-route, 1,000-origin, 100-regex config (per-request cost vs config size)

Listeners are interleaved round by round (the order rotates each round); every ratio is computed
within a round and the median over rounds is reported. Also: .wasm sizes, on_configure time and
memory for the large config (host, via `cargo run --release -p cors-core --example configure_large`, and in
Envoy: start-up time and RSS with the large config against a small one).

Goals are judged on instructions per request (bench/instructions.py, `make bench` runs it first);
these req/s and CPU figures stay beside them.

Environment: BENCH_ROUNDS (default 10), BENCH_SECONDS per wrk run (default 3), BENCH_CONNECTIONS
(default 8), BENCH_SCENARIOS (comma-separated subset), BENCH_SKIP_CONFIGURE=1.
Writes bench/results.json and prints the table (also bench/results.md).
"""

import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

# The test harness's Envoy and config builders, shared with the benchmark.
from tests.harness.envoy import (ENVOY_BIN, NATIVE, ROOT, WASM, Envoy as HarnessEnvoy, bootstrap, direct_route,
                                 envoy_cors_filter, envoy_cors_route_config, free_port, listener, native_filter,
                                 route, skip_without_origin, upstream_cluster, wasm_filter as harness_wasm_filter)

BENCH = ROOT / "bench"
FLOOR_WASM = ROOT / "build" / "cors_floor.wasm"

ROUNDS = int(os.environ.get("BENCH_ROUNDS", "10"))
SECONDS = int(os.environ.get("BENCH_SECONDS", "3"))
CONNECTIONS = int(os.environ.get("BENCH_CONNECTIONS", "8"))

# The path of every benchmarked request (wrk's and bench.instructions').
PATH = "/api/items"
ALLOWED = "https://app.example.com"
REFUSED = "https://evil.example.net"

# The same policy for every filter (Envoy's own in its field names).
POLICY = {
    "allow_origins": [ALLOWED],
    "allow_methods": "GET, POST, PUT, DELETE",
    "allow_headers": "content-type, x-requested-with",
    "expose_headers": "x-total",
    "max_age": "600",
    "allow_credentials": True,
}
ENVOY_CORS_POLICY = {
    "allow_origin_string_match": [{"exact": ALLOWED}],
    "allow_methods": "GET, POST, PUT, DELETE",
    "allow_headers": "content-type, x-requested-with",
    "expose_headers": "x-total",
    "max_age": "600",
    "allow_credentials": True,
}


def large_config(routes=10_000, origins=1_000, regexes=100):
    """The large plugin config: `routes` route policies, one of which (`api`, the route the
    benchmark hits) has `origins` exact origins and `regexes` regexes; the others one origin."""
    big = {
        "allow_origins": [f"https://app{i}.example.com" for i in range(origins - 1)] + [ALLOWED],
        "allow_origin_string_match": [
            {"safe_regex": {"google_re2": {}, "regex": rf"https://[a-z0-9-]+\.tenant{i}\.example\.org"}}
            for i in range(regexes)
        ],
        **{k: v for k, v in POLICY.items() if k != "allow_origins"},
    }
    table = {f"route-{i}": {"allow_origins": [f"https://r{i}.example.com"], "max_age": "60"}
             for i in range(routes - 1)}
    table["api"] = big
    return {"routes": table}


SMALL_CONFIG = {"routes": {"api": POLICY}}

SCENARIOS = {
    "allowed preflight": {"method": "OPTIONS", "headers": {
        "Origin": ALLOWED, "Access-Control-Request-Method": "PUT",
        "Access-Control-Request-Headers": "content-type"}},
    "refused preflight": {"method": "OPTIONS", "headers": {
        "Origin": REFUSED, "Access-Control-Request-Method": "PUT"}},
    "actual GET with Origin": {"method": "GET", "headers": {"Origin": ALLOWED}},
    "request without Origin": {"method": "GET", "headers": {}},
}
MAIN_LISTENERS = ["none", "envoy_cors", "ours", "floor", "ours_skip", "ours_routes", "ours_routes_meta", "ours_so"]
SCALING_SCENARIO = "actual GET with Origin, config size"
SCALING_LISTENERS = ["ours_1route", "ours_10k"]


# ---------------------------------------------------------------- Envoy configs

def wasm_filter(name, path, configuration):
    """A module as JSON text in a StringValue (what Istio's WasmPlugin sends); the `cors-*`
    variants share one VM, the floor has its own."""
    return harness_wasm_filter(configuration, "json", name=name, wasm=path, vm_id=name.split("-")[0])


def Envoy(config, name):
    """A benchmarked Envoy: quiet logs (warn, no Wasm debug), a long start-up allowance for the
    large configuration."""
    return HarnessEnvoy(config, log_level="warn", component_log_level=None, ready_timeout=120)


def bench_listener(name, port, filters, envoy_cors_policy=False, direct=None):
    """A listener whose one route `api` goes to the upstream cluster, or answers `direct`
    (status, body) itself; with `envoy_cors_policy`, its virtual host carries ENVOY_CORS_POLICY."""
    api = direct_route("api", **direct) if direct else route("api")
    vhost = {"name": "bench", "domains": ["*"], "routes": [api]}
    if envoy_cors_policy:
        vhost["typed_per_filter_config"] = envoy_cors_route_config(ENVOY_CORS_POLICY)
    return listener(name, port, filters, [vhost])


def start_upstream():
    """The upstream Envoy every front Envoy forwards to (a direct response 200); (Envoy, port)."""
    port = free_port()
    upstream = Envoy(bootstrap([bench_listener("upstream", port, [], direct={
        "status": 200, "body": {"inline_string": "upstream body"}})], [], free_port()), "upstream")
    return upstream, port


def proxy_listeners(ports, ours_wasm=WASM):
    filters = {
        "none": [],
        "envoy_cors": [envoy_cors_filter()],
        "ours": [wasm_filter("cors-ours", ours_wasm, {"policy": POLICY})],
        "floor": [wasm_filter("floor", FLOOR_WASM, {})],
        "ours_skip": [skip_without_origin(wasm_filter("cors-skip", ours_wasm,
                                                      {"policy": POLICY, "requests_without_origin": "pass"}))],
        "ours_routes": [wasm_filter("cors-routes", ours_wasm, SMALL_CONFIG)],
        "ours_routes_meta": [wasm_filter("cors-routesmeta", ours_wasm,
                                         {**SMALL_CONFIG, "route_metadata_namespace": "cors"})],
        "ours_so": [native_filter({"policy": POLICY}, "json")],
        "ours_1route": [wasm_filter("cors-1route", ours_wasm, SMALL_CONFIG)],
        "ours_10k": [wasm_filter("cors-10k", ours_wasm, large_config())],
    }
    return [bench_listener(name, ports[name], filters[name], envoy_cors_policy=(name == "envoy_cors"))
            for name in ports]


# ---------------------------------------------------------------- wrk

LUA = """
wrk.method = "{method}"
wrk.path = "{path}"
{headers}
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'RESULT {{"requests":%d,"duration_us":%d,"non2xx":%d,"socket_errors":%d,"p50_us":%.1f,"p99_us":%.1f}}\\n',
    summary.requests, summary.duration, e.status, e.connect + e.read + e.write + e.timeout,
    latency:percentile(50), latency:percentile(99)))
end
"""


def lua_script(scenario, directory):
    spec = SCENARIOS.get(scenario) or SCENARIOS["actual GET with Origin"]
    headers = "\n".join(f'wrk.headers["{k}"] = "{v}"' for k, v in spec["headers"].items())
    path = Path(directory) / (scenario.replace(" ", "_").replace(",", "") + ".lua")
    path.write_text(LUA.format(method=spec["method"], path=PATH, headers=headers))
    return path


def wrk(port, script, seconds):
    out = subprocess.run(
        ["wrk", "-t1", f"-c{CONNECTIONS}", f"-d{seconds}s", "-s", str(script), f"http://127.0.0.1:{port}"],
        capture_output=True, text=True, timeout=seconds + 60).stdout
    for line in out.splitlines():
        if line.startswith("RESULT "):
            r = json.loads(line[len("RESULT "):])
            r["rps"] = r["requests"] / (r["duration_us"] / 1e6)
            return r
    raise RuntimeError(f"wrk printed no result:\n{out}")


# ---------------------------------------------------------------- host measurements

def configure_on_host():
    """`cargo run --release -p cors-core --example configure_large`: the crate's pure config parser on the
    host (native code; the Wasm VM is slower), plus per-decision cost against config size."""
    out = subprocess.run(["cargo", "run", "--quiet", "--release", "-p", "cors-core", "--example", "configure_large"],
                         cwd=ROOT, capture_output=True, text=True, check=True).stdout
    for line in out.splitlines():
        if line.startswith("RESULT "):
            return json.loads(line[len("RESULT "):])
    raise RuntimeError(out)


def configure_in_envoy():
    """Start-up time and RSS of an Envoy whose only listener runs our filter with the large
    config, against the same with the 1-route config (same module, same everything else).
    The difference is what the large config costs: JSON load by Envoy + on_configure in V8."""
    results = {}
    for label, config in (("small", SMALL_CONFIG), ("large", large_config())):
        samples = []
        for _ in range(3):
            port, admin = free_port(), free_port()
            cfg = bootstrap([bench_listener("cfg", port, [wasm_filter("cors-cfg", WASM, config)],
                                            direct={"status": 200})], [], admin)
            envoy = Envoy(cfg, f"configure-{label}")
            samples.append((envoy.ready_seconds, envoy.rss_kib()))
            envoy.stop()
        results[label] = {"ready_s": statistics.median(s[0] for s in samples),
                          "rss_kib": statistics.median(s[1] for s in samples),
                          "config_bytes": len(json.dumps(config))}
    results["extra_ready_s"] = results["large"]["ready_s"] - results["small"]["ready_s"]
    results["extra_rss_kib"] = results["large"]["rss_kib"] - results["small"]["rss_kib"]
    return results


# ---------------------------------------------------------------- the run

def run_rounds(proxy_ports, tmp, scenarios, proxy):
    """{scenario: {listener: [per-round result]}}"""
    runs = {s: {l: [] for l in ls} for s, ls in scenarios.items()}
    scripts = {s: lua_script(s, tmp) for s in scenarios}
    # Warm-up: every listener once (V8 tiering, connection pools).
    for s, ls in scenarios.items():
        for l in ls:
            wrk(proxy_ports[l], scripts[s], 1)
    for r in range(ROUNDS):
        for s, ls in scenarios.items():
            order = ls[r % len(ls):] + ls[:r % len(ls)]
            for l in order:
                cpu_before = proxy.cpu_seconds()
                result = wrk(proxy_ports[l], scripts[s], SECONDS)
                # The proxy Envoy's own CPU per request: much less disturbed than req/s by
                # whatever else runs on the machine (it still moves with cache and frequency).
                result["cpu_us_per_req"] = (proxy.cpu_seconds() - cpu_before) * 1e6 / max(result["requests"], 1)
                runs[s][l].append(result)
            print(f"  round {r + 1}/{ROUNDS} {s}: " +
                  "  ".join(f"{l} {runs[s][l][-1]['rps']:.0f}" for l in ls), flush=True)
    return runs


RATIOS = [("ours", "envoy_cors"), ("ours", "floor"), ("ours", "none"), ("floor", "envoy_cors"),
          ("envoy_cors", "none"), ("floor", "none"), ("ours_routes", "floor"), ("ours_routes_meta", "floor"), ("ours_skip", "ours"),
          ("ours_skip", "none"),
          ("ours_10k", "ours_1route"),
          ("ours_so", "envoy_cors"), ("ours_so", "none"), ("ours_so", "ours")]


def summarize(runs):
    summary = {}
    for s, by_listener in runs.items():
        row = {"listeners": {}, "ratios": {}, "cpu_ratios": {}}
        for l, results in by_listener.items():
            row["listeners"][l] = {
                "rps_median": statistics.median(r["rps"] for r in results),
                "p50_us_median": statistics.median(r["p50_us"] for r in results),
                "p99_us_median": statistics.median(r["p99_us"] for r in results),
                "proxy_cpu_us_per_req_median": statistics.median(r["cpu_us_per_req"] for r in results),
                "non2xx": sum(r["non2xx"] for r in results),
                "socket_errors": sum(r["socket_errors"] for r in results),
                "rps_per_round": [round(r["rps"]) for r in results],
            }
        for a, b in RATIOS:
            if a in by_listener and b in by_listener:
                per_round = [x["rps"] / y["rps"] for x, y in zip(by_listener[a], by_listener[b])]
                row["ratios"][f"{a}/{b}"] = {"median": statistics.median(per_round),
                                             "per_round": [round(v, 3) for v in per_round]}
                # The same comparison from the proxy's CPU per request (b's cost / a's cost:
                # the throughput ratio a CPU-bound proxy would show).
                per_round = [y["cpu_us_per_req"] / x["cpu_us_per_req"]
                             for x, y in zip(by_listener[a], by_listener[b]) if x["cpu_us_per_req"] > 0]
                if per_round:
                    row["cpu_ratios"][f"{a}/{b}"] = {"median": statistics.median(per_round),
                                                     "per_round": [round(v, 3) for v in per_round]}
        summary[s] = row
    return summary


def table(results):
    lines = []
    m = results["machine"]
    lines.append(f"Machine: {m['cpu']}, {m['cores']} cores, {m['kernel']}; Envoy {m['envoy']}; "
                 f"{m['load_before']} load average before the run (shared machine: noisy).")
    lines.append(f"Run: {results['rounds']} rounds x {results['seconds']} s per listener and scenario, "
                 f"wrk -t1 -c{results['connections']}, listeners interleaved (order rotated each round); "
                 "ratios per round, then median.")
    lines.append("")
    lines.append("| scenario | listener | req/s (median) | p50 µs | p99 µs | proxy CPU µs/req | non-2xx |")
    lines.append("|---|---|---:|---:|---:|---:|---:|")
    for s, row in results["scenarios"].items():
        for l, v in row["listeners"].items():
            lines.append(f"| {s} | {l} | {v['rps_median']:.0f} | {v['p50_us_median']:.0f} | "
                         f"{v['p99_us_median']:.0f} | {v['proxy_cpu_us_per_req_median']:.1f} | {v['non2xx']} |")
    lines.append("")
    lines.append("Goals are judged on instructions per request, which repeat where req/s does not: "
                 "[instructions.md](instructions.md) (`make bench-quick`).")
    lines.append("")
    lines.append("| scenario | ratio | req/s ratio (median of per-round) | CPU-per-request ratio |")
    lines.append("|---|---|---:|---:|")
    for s, row in results["scenarios"].items():
        for name, v in row["ratios"].items():
            cpu = row.get("cpu_ratios", {}).get(name)
            cpu_text = "" if cpu is None else f"{cpu['median']:.3f}"
            lines.append(f"| {s} | {name} | {v['median']:.3f} | {cpu_text} |")
    lines.append("")
    sz = results["sizes"]
    lines.append(f".wasm sizes: ours {sz['ours_bytes']} bytes ({sz['ours_bytes'] / 1024:.1f} KiB; target ≤ 256 KiB), "
                 f"floor {sz['floor_bytes']} bytes; native module (libcors.so) {sz['so_bytes']} bytes.")
    host = results.get("configure_host")
    if host:
        lines.append(
            f"on_configure, host (native code, `cargo run --release -p cors-core --example configure_large`): "
            f"{host['config_bytes']} bytes of JSON ({host['routes']} routes, {host['origins']} origins, "
            f"{host['regexes']} regexes) parsed in {host['parse_ms_median']:.1f} ms (median of {host['runs']}), "
            f"peak heap {host['peak_heap_bytes'] / 2**20:.1f} MiB, retained {host['retained_heap_bytes'] / 2**20:.1f} MiB.")
        lines.append(
            f"Per-decision cost on the host (decide + select): 1-route/1-origin config {host['decide_small_ns']:.0f} ns, "
            f"10,000-route/1,000-origin/100-regex config {host['decide_large_ns']:.0f} ns "
            f"(exact origins and route names are hash lookups).")
    env = results.get("configure_envoy")
    if env:
        lines.append(
            f"on_configure, in Envoy (V8): start-up to ready {env['small']['ready_s']:.2f} s with the 1-route config, "
            f"{env['large']['ready_s']:.2f} s with the large one (+{env['extra_ready_s']:.2f} s, median of 3; "
            f"includes Envoy's own parsing of the {env['large']['config_bytes']} byte config); RSS "
            f"{env['small']['rss_kib'] / 1024:.0f} MiB vs {env['large']['rss_kib'] / 1024:.0f} MiB "
            f"(+{env['extra_rss_kib'] / 1024:.0f} MiB).")
    return "\n".join(lines)


def machine():
    cpu = "unknown CPU"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    version = subprocess.run([str(ENVOY_BIN), "--version"], capture_output=True, text=True).stdout.strip()
    version = version.split("version:")[-1].strip().split("/")[1] if "/" in version else version
    return {"cpu": cpu, "cores": os.cpu_count(), "kernel": platform.release(), "envoy": version,
            "load_before": " ".join(f"{x:.2f}" for x in os.getloadavg())}


def main():
    if not WASM.exists():
        sys.exit("build/cors_filter.wasm is missing: run `make build` (or `make bench`)")
    if not NATIVE.exists():
        sys.exit("build/libcors.so is missing: run `make build` (or `make bench`)")
    if not shutil.which("wrk"):
        sys.exit("wrk is missing: run `make setup`")
    only = os.environ.get("BENCH_SCENARIOS")
    scenarios = {s: list(MAIN_LISTENERS) for s in SCENARIOS}
    scenarios[SCALING_SCENARIO] = list(SCALING_LISTENERS)
    if only:
        wanted = [w.strip() for w in only.split(",")]
        scenarios = {s: ls for s, ls in scenarios.items() if any(w in s for w in wanted)}
    if not FLOOR_WASM.exists():
        sys.exit("build/cors_floor.wasm is missing: run `make bench` (it builds bench/floor)")
    results = {"machine": machine(), "rounds": ROUNDS, "seconds": SECONDS, "connections": CONNECTIONS,
               "sizes": {"ours_bytes": WASM.stat().st_size, "floor_bytes": FLOOR_WASM.stat().st_size,
                         "so_bytes": NATIVE.stat().st_size}}
    if not os.environ.get("BENCH_SKIP_CONFIGURE"):
        print("on_configure on the host ...", flush=True)
        results["configure_host"] = configure_on_host()
        print("on_configure in Envoy ...", flush=True)
        results["configure_envoy"] = configure_in_envoy()

    upstream, up_port = start_upstream()
    admin = free_port()
    names = sorted({l for ls in scenarios.values() for l in ls}, key=lambda n: (MAIN_LISTENERS + SCALING_LISTENERS).index(n))
    ports = {name: free_port() for name in names}
    proxy = Envoy(bootstrap(proxy_listeners(ports), [upstream_cluster(up_port)], admin), "proxy")
    tmp = tempfile.mkdtemp(prefix="cors-bench-lua-")
    try:
        print(f"benchmark: {ROUNDS} rounds x {SECONDS} s, listeners {', '.join(names)}", flush=True)
        runs = run_rounds(ports, tmp, scenarios, proxy)
    finally:
        proxy.stop()
        upstream.stop()
    results["scenarios"] = summarize(runs)
    results["table"] = table(results)
    (BENCH / "results.json").write_text(json.dumps(results, indent=1) + "\n")
    (BENCH / "results.md").write_text(results["table"] + "\n")
    print()
    print(results["table"])


if __name__ == "__main__":
    main()
