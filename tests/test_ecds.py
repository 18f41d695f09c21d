"""The filter delivered the way Istio delivers a WasmPlugin: through ECDS (extension config
discovery). The listener names the filter and a config source instead of a config; Envoy loads
what the source holds and swaps it in on every update. Istio's source is ADS (gRPC); here it is
a file Envoy watches (`path_config_source` with `watched_directory`), replaced by an atomic
rename, as a control plane would push a new resource.

Under steady browser-like load (kept-alive connections, each sending a preflight then the actual
PUT), the test makes three updates in turn:
1. a new policy (`allow_methods` and `expose_headers` change, so each response tells which
   policy answered it);
2. a new module: a copy of the .wasm at another path, with different bytes (an extra custom
   section, so another sha256), delivered with a third policy that proves the new resource runs;
3. a configuration the filter refuses.
No request may fail and every response must carry CORS headers throughout; each new policy must
serve within seconds; the refused update must be logged with the filter's message while the
previous policy keeps serving. The figures are printed (`pytest -s`) and quoted in
docs/deploy.md.

Also pinned here, for docs/deploy.md: what `default_config` changes when the first
configuration is refused.
"""

import json
import os
import threading
import time
import http.client

import pytest

from tests.harness.envoy import WASM, Envoy, bootstrap, free_port, header_values, listener, request, route, upstream_cluster, \
    upstream_listener

ORIGIN = "https://app.example"
WASM_TYPE = "type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm"
POLICIES = {
    "A": {"allow_origins": [ORIGIN], "allow_methods": "GET, PUT", "allow_headers": "content-type",
          "expose_headers": "x-policy-a"},
    "B": {"allow_origins": [ORIGIN], "allow_methods": "GET, PUT, PATCH", "allow_headers": "content-type",
          "expose_headers": "x-policy-b"},
    "C": {"allow_origins": [ORIGIN], "allow_methods": "GET, PUT, DELETE", "allow_headers": "content-type",
          "expose_headers": "x-policy-c"},
}
REFUSED = {"allow_origins": ["*"], "allow_credentials": True}
REFUSAL_MESSAGE = "policy.allow_credentials: true together with an allow-any origin"
SETTLE_SECONDS = 1.0       # load before and after each update
NEW_POLICY_DEADLINE = 10.0  # "within seconds": a new module takes ~1-2 s to compile here


def plugin_config(policy, wasm=WASM):
    """The Wasm filter config an ECDS resource carries (Istio sends the same: the plugin config as
    JSON text)."""
    return {"@type": WASM_TYPE, "config": {
        "name": "cors", "root_id": "cors",
        "vm_config": {"vm_id": "cors", "runtime": "envoy.wasm.runtime.v8", "code": {"local": {"filename": str(wasm)}}},
        "configuration": {"@type": "type.googleapis.com/google.protobuf.StringValue",
                          "value": json.dumps({"policy": policy})},
    }}


class ConfigSource:
    """The file Envoy watches: a DiscoveryResponse holding one TypedExtensionConfig named `cors`."""

    def __init__(self, directory):
        self.dir = directory
        self.path = directory / "cors.json"
        self.version = 0

    def publish(self, typed_config):
        """Atomically replaces the file (write aside, then rename onto it): Envoy never reads a
        half-written resource. Returns the version_info published."""
        self.version += 1
        resource = {"@type": "type.googleapis.com/envoy.config.core.v3.TypedExtensionConfig",
                    "name": "cors", "typed_config": typed_config}
        staging = self.dir / f".cors.json.{self.version}"
        staging.write_text(json.dumps({"version_info": f"v{self.version}", "resources": [resource]}))
        os.rename(staging, self.path)
        return f"v{self.version}"

    def filter(self, default_config=None):
        """The listener's HTTP filter: found through ECDS, no config of its own."""
        discovery = {"config_source": {"path_config_source": {
            "path": str(self.path), "watched_directory": {"path": str(self.dir)}}},
            "type_urls": [WASM_TYPE]}
        if default_config:
            discovery["default_config"] = default_config
        return {"name": "cors", "config_discovery": discovery}


def ecds_envoy(source, default_config=None):
    up, port, admin = free_port(), free_port(), free_port()
    config = bootstrap([upstream_listener(up), listener("api", port, [source.filter(default_config)],
                                                        [{"name": "api", "domains": ["*"], "routes": [route("api")]}])],
                       [upstream_cluster(up)], admin)
    config["node"] = {"id": "ecds-test", "cluster": "ecds-test"}  # xDS subscriptions need a node
    envoy = Envoy(config)
    envoy.port = port
    return envoy


def wasm_with_custom_section(data, name, payload):
    """The module with one more custom section at the end: other bytes, same code."""
    def leb128(n):
        out = bytearray()
        while True:
            byte, n = n & 0x7F, n >> 7
            out.append(byte | (0x80 if n else 0))
            if not n:
                return bytes(out)
    body = leb128(len(name)) + name + payload
    return data + b"\x00" + leb128(len(body)) + body


class BrowserLoad:
    """Threads that each keep one connection alive and send, in a loop, a preflight and the
    actual PUT it announces, as a browser does. Every response is recorded as (start time,
    kind, status or error, Access-Control-Allow-Origin, the header naming the policy,
    connection number)."""

    def __init__(self, port, threads=2):
        self.port = port
        self.stop_event = threading.Event()
        self.records = []
        self.lock = threading.Lock()
        self.threads = [threading.Thread(target=self.run, args=(n,), daemon=True) for n in range(threads)]

    def __enter__(self):
        for t in self.threads:
            t.start()
        return self

    def __exit__(self, *exc):
        self.stop_event.set()
        for t in self.threads:
            t.join(10)

    REQUESTS = {
        "preflight": ("OPTIONS", [("origin", ORIGIN), ("access-control-request-method", "PUT"),
                                  ("access-control-request-headers", "content-type")], "access-control-allow-methods"),
        "actual": ("PUT", [("origin", ORIGIN), ("content-type", "application/json"), ("content-length", "2")],
                   "access-control-expose-headers"),
    }

    def run(self, number):
        conn = None
        while not self.stop_event.is_set():
            for kind, (method, headers, marker_header) in self.REQUESTS.items():
                started = time.monotonic()
                try:
                    conn = conn or http.client.HTTPConnection("127.0.0.1", self.port, timeout=5)
                    conn.putrequest(method, "/api", skip_accept_encoding=True)
                    for name, value in headers:
                        conn.putheader(name, value)
                    conn.endheaders(b"{}" if method == "PUT" else None)
                    response = conn.getresponse()
                    response.read()
                    got = [(k.lower(), v) for k, v in response.getheaders()]
                    record = (started, kind, response.status, header_values(got, "access-control-allow-origin"),
                              ",".join(header_values(got, marker_header)), number)
                except (OSError, http.client.HTTPException) as e:
                    conn.close()
                    conn = None
                    record = (started, kind, repr(e), [], "", number)
                with self.lock:
                    self.records.append(record)
        if conn:
            conn.close()

    def since(self, t):
        with self.lock:
            return [r for r in self.records if r[0] >= t]

    def wait_for(self, predicate, timeout):
        """Polls the responses until `predicate(records)` holds."""
        deadline = time.monotonic() + timeout
        while not predicate(self.since(0)):
            if time.monotonic() > deadline:
                raise AssertionError(f"not within {timeout} s")
            time.sleep(0.02)


def serves(policy):
    """The markers a response from `policy` carries, by kind."""
    return {"preflight": POLICIES[policy]["allow_methods"], "actual": POLICIES[policy]["expose_headers"]}


def switch_figures(load, published_at, policy):
    """Seconds from the update until the first response of the new policy and until the last
    response of any older one (requests started after the update)."""
    markers = serves(policy)
    after = load.since(published_at)
    new = [r[0] for r in after if r[4] == markers[r[1]]]
    old = [r[0] for r in after if r[4] != markers[r[1]]]
    return {"first_new_s": round(min(new) - published_at, 3) if new else None,
            "last_old_s": round(max(old) - published_at, 3) if old else 0.0}


@pytest.fixture(scope="module")
def swaps(tmp_path_factory):
    d = tmp_path_factory.mktemp("ecds")
    source = ConfigSource(d)
    source.publish(plugin_config(POLICIES["A"]))
    envoy = ecds_envoy(source)
    module_copy = d / "modules" / "cors_filter-2.wasm"
    module_copy.parent.mkdir()
    module_copy.write_bytes(wasm_with_custom_section(WASM.read_bytes(), b"cors-test-copy", b"2"))
    figures = {}
    try:
        with BrowserLoad(envoy.port) as load:
            def update(step, typed_config, policy):
                load.wait_for(lambda rs: len(rs) > 0, 5)
                time.sleep(SETTLE_SECONDS)
                published_at = time.monotonic()
                version = source.publish(typed_config)
                if policy:
                    markers = serves(policy)
                    load.wait_for(lambda rs: any(r[0] >= published_at and r[4] == markers[r[1]] for r in rs),
                                  NEW_POLICY_DEADLINE)
                time.sleep(SETTLE_SECONDS)
                window = load.since(published_at - SETTLE_SECONDS)
                figures[step] = {"version": version, "requests": len(window),
                                 **(switch_figures(load, published_at, policy) if policy else {})}
                return published_at

            update("policy", plugin_config(POLICIES["B"]), "B")
            update("module", plugin_config(POLICIES["C"], module_copy), "C")
            refused_at = update("refused", plugin_config(REFUSED, module_copy), None)
            log = envoy.wait_log("config update rejected", REFUSAL_MESSAGE)
            time.sleep(SETTLE_SECONDS)
        records = load.since(0)
        stats = envoy.stats("extension_config_discovery.http_filter.cors.")
        dump = request(envoy.admin_port, "GET", "/config_dump?resource=ecds_filters")[2].decode()
    finally:
        envoy.stop()
    duration = records[-1][0] - records[0][0]
    summary = {
        "requests": len(records), "seconds": round(duration, 1), "per_second": round(len(records) / duration),
        "failed": sum(1 for r in records if r[2] != 200),
        "without_cors": sum(1 for r in records if r[3] != [ORIGIN]),
        **figures,
    }
    print("\nECDS swaps under load:", json.dumps(summary))
    return {"records": records, "figures": figures, "summary": summary, "log": log, "stats": stats,
            "dump": dump, "module_copy": module_copy, "envoy_log": envoy.log(), "refused_at": refused_at}


def test_no_request_failed_during_the_swaps(swaps):
    failed = [r for r in swaps["records"] if r[2] != 200]
    assert swaps["summary"]["requests"] > 500, swaps["summary"]
    assert failed == [], failed[:5]
    assert all(swaps["figures"][step]["requests"] > 100 for step in ("policy", "module", "refused")), swaps["summary"]


def test_every_response_carried_cors_headers_during_the_swaps(swaps):
    without = [r for r in swaps["records"] if r[3] != [ORIGIN]]
    assert without == [], without[:5]
    kinds = {r[1] for r in swaps["records"]}
    assert kinds == {"preflight", "actual"}


@pytest.mark.parametrize("step", ["policy", "module"])
def test_the_new_policy_serves_within_seconds(swaps, step):
    f = swaps["figures"][step]
    assert f["first_new_s"] is not None and f["first_new_s"] < NEW_POLICY_DEADLINE, f
    assert f["last_old_s"] < NEW_POLICY_DEADLINE, f


def test_policies_served_in_order_and_never_mixed_back(swaps):
    """On each connection, once a newer policy answered, no response came from an older one."""
    generation = {marker: i for i, p in enumerate("ABC") for marker in serves(p).values()}
    for connection in {r[5] for r in swaps["records"]}:
        seen = [generation[r[4]] for r in swaps["records"] if r[5] == connection]
        assert seen == sorted(seen) and set(seen) == {0, 1, 2}, connection


def test_the_new_module_is_the_one_loaded(swaps):
    ecds = json.loads(swaps["dump"])["configs"][0]["ecds_filter"]["typed_config"]["config"]
    assert ecds["vm_config"]["code"]["local"]["filename"] == str(swaps["module_copy"])
    assert swaps["module_copy"].read_bytes() != WASM.read_bytes()


def test_the_refused_update_is_logged_and_the_previous_policy_keeps_serving(swaps):
    log, stats = swaps["log"], swaps["stats"]
    assert "Filesystem config update rejected" in log and REFUSAL_MESSAGE in log
    assert stats["extension_config_discovery.http_filter.cors.update_rejected"] == "1"
    assert stats["extension_config_discovery.http_filter.cors.update_success"] == "3"
    assert swaps["summary"]["refused"]["version"] == "v4"
    assert json.loads(stats["extension_config_discovery.http_filter.cors.version_text"]) == "v3"
    after = [r for r in swaps["records"] if r[0] >= swaps["refused_at"]]
    assert len(after) > 100
    assert {r[4] for r in after} == set(serves("C").values())
    assert "panicked" not in swaps["envoy_log"]


# ---------------------------------------------------------------- the first configuration refused

def first_config_refused(tmp_path, default_config):
    source = ConfigSource(tmp_path)
    source.publish(plugin_config(REFUSED))
    envoy = ecds_envoy(source, default_config)
    try:
        preflight = request(envoy.port, "OPTIONS", "/api", [("origin", ORIGIN), ("access-control-request-method", "PUT")])
        stats = envoy.stats("extension_config_discovery.http_filter.cors.")
    finally:
        envoy.stop()
    assert stats["extension_config_discovery.http_filter.cors.update_rejected"] == "1"
    return preflight


def test_without_default_config_a_refused_first_config_fails_every_request(tmp_path):
    """No configuration ever accepted and no default: the filter is missing, and Envoy answers
    every request through the listener with 500 (fail closed)."""
    status, headers, _ = first_config_refused(tmp_path, None)
    assert status == 500 and header_values(headers, "access-control-allow-origin") == []


def test_default_config_serves_when_the_first_config_is_refused(tmp_path):
    status, headers, _ = first_config_refused(tmp_path, plugin_config(POLICIES["A"]))
    assert status == 200 and header_values(headers, "access-control-allow-origin") == [ORIGIN]
    assert header_values(headers, "access-control-allow-methods") == [POLICIES["A"]["allow_methods"]]
