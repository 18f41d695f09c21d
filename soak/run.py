#!/usr/bin/env python3
"""Soak: mixed CORS traffic with wrk while the listener (and its plugin configuration) is
replaced several times through a file-based dynamic listener (issue 6).

    .venv/bin/python -m soak.run [--duration 180] [--reloads 6] [--connections 4]   (from the repository root)

Loopback only, bounded in time. One Envoy (--concurrency 1): a static upstream listener that
answers with direct responses, and the CORS listener from LDS
(`dynamic_resources.lds_config.path_config_source`), whose file is replaced by atomic rename.
Each replacement changes the plugin configuration (a different max_age proves the new one is in
force; the encoding alternates between JSON text and inline Struct; some variants answer refused
preflights with 403 instead of forwarding). One extra replacement carries a configuration the
filter refuses: Envoy must reject that update and keep serving the previous one.

Reports requests served, ok / deliberate refusals (403 with x-cors-reason) / anything else,
wrk's socket errors, the LDS counters, and Envoy's RSS before traffic, during, and after.
Exit status 1 if a check fails (bad responses, socket errors, a reload not taking effect, a
panic in the log). Results also go to soak/last-run.json.
"""

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from tests.harness.envoy import (ROOT, Envoy, free_port, listener, poll, request, upstream_cluster, upstream_listener,
                                 wasm_filter)

ORIGINS = ["https://app.example.com", "https://*.example.com"]


def policy(version):
    return {
        "allow_origins": ORIGINS,
        "allow_methods": "GET, PUT, POST" if version % 2 else ["GET", "PUT", "POST", "DELETE"],
        "allow_headers": "x-a, content-type",
        "max_age": 600 + version,
        "allow_credentials": version % 3 != 0,
        "forward_not_matching_preflights": version % 2 == 0,
        "debug_reason_header": True,
    }


def cors_listener(port, version, bad=False):
    config = {"policy": policy(version), "routes": {"api": {"allow_origins": ["https://api.example.com"]}}}
    if bad:
        config["policy"]["allow_origins"] = ["*"]  # with allow_credentials: refused at load
        config["policy"]["allow_credentials"] = True
    encoding = "json" if version % 2 else "struct"
    routes = [{"name": "api", "match": {"prefix": "/api"}, "route": {"cluster": "upstream"}},
              {"name": "default", "match": {"prefix": "/"}, "route": {"cluster": "upstream"}}]
    lst = listener("soak", port, [wasm_filter(config, encoding)],
                   [{"name": "soak", "domains": ["*"], "routes": routes}])
    lst["@type"] = "type.googleapis.com/envoy.config.listener.v3.Listener"
    return lst


def write_lds(path, lst, version):
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps({"version_info": str(version), "resources": [lst]}))
    os.rename(tmp, path)  # atomic: Envoy's watch sees a moved-in file, never a half-written one


def max_age_in_force(port):
    status, headers, _ = request(port, "OPTIONS", "/", [("origin", "https://app.example.com"),
                                                       ("access-control-request-method", "PUT")])
    return status, dict(headers).get("access-control-max-age")


def wait_for(predicate, timeout=20):
    """Whether `predicate()` held within `timeout` s; a connection refused while a listener is
    being replaced counts as not yet."""
    return bool(poll(predicate, timeout, interval=0.2, retry_on=(OSError,)))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--duration", type=int, default=180, help="seconds of traffic")
    ap.add_argument("--reloads", type=int, default=6, help="good listener replacements")
    ap.add_argument("--connections", type=int, default=4)
    args = ap.parse_args()

    work = Path(tempfile.mkdtemp(prefix="cors-soak-"))
    lds = work / "lds.json"
    up, admin, port = free_port(), free_port(), free_port()
    write_lds(lds, cors_listener(port, 0), 0)
    boot = {
        "node": {"id": "cors-soak", "cluster": "cors-soak"},
        "admin": {"address": {"socket_address": {"address": "127.0.0.1", "port_value": admin}}},
        "static_resources": {"listeners": [upstream_listener(up)], "clusters": [upstream_cluster(up)]},
        "dynamic_resources": {"lds_config": {"path_config_source": {"path": str(lds)}, "resource_api_version": "V3"}},
    }
    envoy = Envoy(boot, log_level="warn", component_log_level="wasm:info",
                  extra_args=["--drain-time-s", "2", "--drain-strategy", "immediate"])

    def stats():
        return envoy.stats("listener_manager")

    failures = []
    result = {}
    try:
        if not wait_for(lambda: max_age_in_force(port) == (200, "600"), 30):
            raise SystemExit(f"Envoy did not come up:\n{envoy.log()[-3000:]}")
        # Warm up, then take the baseline RSS.
        for _ in range(200):
            max_age_in_force(port)
        rss = [(0.0, envoy.rss_kib())]
        lds0 = stats()

        wrk = subprocess.Popen(
            ["wrk", "-t1", f"-c{args.connections}", f"-d{args.duration}s", "--timeout", "5s",
             "-s", str(ROOT / "soak" / "mixed.lua"), f"http://127.0.0.1:{port}/"],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        start = time.time()
        steps = args.reloads + 1  # the bad update goes in the middle
        interval = args.duration / (steps + 1)
        version, applied = 0, []
        for step in range(steps):
            while time.time() < start + interval * (step + 1):
                time.sleep(0.5)
                if int(time.time() - start) % 10 == 0:
                    rss.append((round(time.time() - start, 1), envoy.rss_kib()))
            before = stats()
            if step == steps // 2:
                write_lds(lds, cors_listener(port, version + 100, bad=True), f"bad-{step}")
                rejected = wait_for(lambda: int(stats().get("listener_manager.lds.update_rejected", 0))
                                    > int(before.get("listener_manager.lds.update_rejected", 0)))
                still = max_age_in_force(port)
                applied.append({"t": round(time.time() - start, 1), "bad": True, "rejected": rejected,
                                "max_age_after": still[1]})
                if not rejected or still != (200, str(600 + version)):
                    failures.append(f"bad update: rejected={rejected}, previous config kept={still}")
                continue
            version += 1
            write_lds(lds, cors_listener(port, version), version)
            took = wait_for(lambda: max_age_in_force(port) == (200, str(600 + version)))
            applied.append({"t": round(time.time() - start, 1), "version": version,
                            "encoding": "json" if version % 2 else "struct", "in_force": took})
            if not took:
                failures.append(f"reload {version} did not take effect")
        out, _ = wrk.communicate(timeout=args.duration + 60)
        rss.append((round(time.time() - start, 1), envoy.rss_kib()))
        time.sleep(3)  # drains finish
        rss_after = envoy.rss_kib()
        lds1 = stats()

        soak = dict(re.findall(r"(\w+)=(\d+)", " ".join(l for l in out.splitlines() if l.startswith("SOAK"))))
        soak = {k: int(v) for k, v in soak.items()}
        requests = int(re.search(r"(\d+) requests in", out).group(1))
        log = envoy.log()
        result = {
            "duration_s": args.duration,
            "connections": args.connections,
            "requests": requests,
            "requests_per_s": round(requests / args.duration),
            "ok_2xx": soak.get("ok"),
            "deliberate_refusals_403": soak.get("refused"),
            "other_non_2xx": soak.get("bad"),
            "with_acao": soak.get("acao"),
            "socket_errors": {k: soak.get(k) for k in ("connect", "read", "write", "timeout")},
            "reloads": applied,
            "lds_update_success": int(lds1.get("listener_manager.lds.update_success", 0))
            - int(lds0.get("listener_manager.lds.update_success", 0)),
            "lds_update_rejected": int(lds1.get("listener_manager.lds.update_rejected", 0))
            - int(lds0.get("listener_manager.lds.update_rejected", 0)),
            "rss_kb_before": rss[0][1],
            "rss_kb_after": rss_after,
            "rss_kb_samples": rss,
            "panics_in_log": log.count("panicked"),
            "wrk_output": out.splitlines()[:12],
        }
        if soak.get("bad", 1) != 0:
            failures.append(f"{soak.get('bad')} non-2xx responses that are not deliberate refusals")
        if any(soak.get(k, 0) for k in ("connect", "read", "write", "timeout")):
            # A read error is a connection the server closed under wrk: during listener drains
            # Envoy closes idle keep-alive connections, which wrk counts; reported, not failed.
            result["note"] = "read errors are keep-alive connections closed by listener drains"
        if soak.get("connect", 0) or soak.get("timeout", 0):
            failures.append("connect errors or timeouts")
        if result["panics_in_log"]:
            failures.append("panic in Envoy's log")
        # Growth check: RSS after may not exceed the baseline by more than 50 MB.
        if rss_after - rss[0][1] > 50_000:
            failures.append(f"RSS grew from {rss[0][1]} kB to {rss_after} kB")
    finally:
        envoy.stop()
    result["failures"] = failures
    (ROOT / "soak" / "last-run.json").write_text(json.dumps(result, indent=1) + "\n")
    print(json.dumps({k: v for k, v in result.items() if k != "wrk_output"}, indent=1))
    print("\n".join(result.get("wrk_output", [])))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
