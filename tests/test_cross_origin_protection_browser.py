"""`cross_origin_protection` in a real browser (issue 24): headless Chromium loads
web/cross-origin/index.html from an allowed and from a refused origin, and each page makes the
requests CORS does not stop against one API per mode (`off`, `report`, `enforce`): a form POST
into a hidden frame, a `no-cors` fetch POST, a CORS GET, a credentialed POST (preflighted), and
a WebSocket to a real WebSocket server (tests/harness/ws_echo.py) behind Envoy. A fourth API
(`enforce`) listens on HTTPS with HTTP/2 and extended CONNECT (`allow_connect`), where Chromium
opens its WebSocket over HTTP/2 (RFC 8441). A third page load navigates the top-level window
from the refused page to the API.

Envoy's access log on the APIs says which requests reached the upstream (`%UPSTREAM_HOST%` is
`-` for the filter's 403) and over which protocol; the page says what the browser saw; the
filter's counters say what `report` and `enforce` counted. Both builds."""

import subprocess
import sys
import time
import urllib.parse

import pytest

from scripts.demo_tls import make as demo_tls
from tests.harness.browser import chromium_binary, dump_dom, dump_dom_at_load, page_results, read_access_log
from tests.harness.envoy import (ROOT, Envoy, bootstrap, cors_filter, direct_route, free_port, hcm, listener, poll,
                                 route, stop_process, upstream_cluster, upstream_listener)

PAGE = "web/cross-origin/index.html"
MODES = ("off", "report", "enforce")
ROLES = ("allowed", "refused")
LOG_FORMAT = "%REQ(:METHOD)% %REQ(:PATH)% %REQ(ORIGIN)% %RESPONSE_CODE% %PROTOCOL% %UPSTREAM_HOST% %REQ(SEC-FETCH-SITE)%"
# What the counters of `report` and `enforce` count, by the build's stat prefix.
PREFIX = {"wasm": "wasmcustom", "native": "dynamicmodulescustom"}


def page_listener(name, port):
    lst = listener(name, port, [], [{"name": name, "domains": ["*"], "routes": [
        direct_route(body={"filename": PAGE}, headers=[("content-type", "text/html; charset=utf-8")])]}])
    lst["enable_reuse_port"] = False
    hcm(lst)["route_config"]["max_direct_response_body_size_bytes"] = 1048576
    return lst


# Envoy hands an HTTP/2 WebSocket (extended CONNECT) to an HTTP/1.1 upstream as an Upgrade
# request, which has no Sec-WebSocket-Key (RFC 8441 has none); the websockets server refuses
# such a handshake (400). The route supplies one where it is missing (any 16 bytes in base64).
WEBSOCKET_KEY = {"header": {"key": "sec-websocket-key", "value": "dGhlIHNhbXBsZSBub25jZQ=="},
                 "append_action": "ADD_IF_ABSENT"}


def gate_listener(port):
    """Answers after a minute (Envoy's fault filter): the page's frame here holds its load event,
    at which Chromium prints the DOM, until the page removes the frame (`dump_dom_at_load`)."""
    fault = {"name": "envoy.filters.http.fault", "typed_config": {
        "@type": "type.googleapis.com/envoy.extensions.filters.http.fault.v3.HTTPFault",
        "delay": {"fixed_delay": "60s", "percentage": {"numerator": 100, "denominator": "HUNDRED"}}}}
    lst = listener("gate", port, [fault], [{"name": "gate", "domains": ["*"], "routes": [direct_route()]}])
    lst["enable_reuse_port"] = False
    return lst


def api_listener(build, name, port, mode, allowed_origin, access_log, tls_dir=None):
    """The API under `mode`: /ws to the WebSocket server, the rest to the upstream; WebSocket
    upgrades on; with `tls_dir`, HTTPS with HTTP/2 and extended CONNECT."""
    policy = {"allow_origins": [allowed_origin], "allow_credentials": True, "allow_methods": "POST",
              "allow_headers": "content-type", "cross_origin_protection": mode}
    lst = listener(name, port, [cors_filter(build, {"policy": policy})], [{
        "name": name, "domains": ["*"],
        "routes": [route("ws", prefix="/ws", cluster="ws", request_headers_to_add=[WEBSOCKET_KEY]), route(name)]}])
    lst["enable_reuse_port"] = False
    manager = hcm(lst)
    manager["upgrade_configs"] = [{"upgrade_type": "websocket"}]
    manager["access_log"] = [{
        "name": "envoy.access_loggers.file",
        "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.access_loggers.file.v3.FileAccessLog",
            "path": str(access_log),
            "log_format": {"text_format_source": {"inline_string": f"{name} {LOG_FORMAT}\n"}},
        },
    }]
    if tls_dir:
        manager["codec_type"] = "AUTO"
        manager["http2_protocol_options"] = {"allow_connect": True}
        lst["filter_chains"][0]["transport_socket"] = {
            "name": "envoy.transport_sockets.tls",
            "typed_config": {
                "@type": "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext",
                "common_tls_context": {
                    "alpn_protocols": ["h2", "http/1.1"],
                    "tls_certificates": [{"certificate_chain": {"filename": str(tls_dir / "cert.pem")},
                                          "private_key": {"filename": str(tls_dir / "key.pem")}}],
                },
            },
        }
    return lst


class WebSocketServer:
    """tests/harness/ws_echo.py on a free port."""

    def __init__(self, log_path):
        self.port = free_port()
        self.log_path = log_path
        with open(log_path, "w") as log:
            self.proc = subprocess.Popen([sys.executable, "-m", "tests.harness.ws_echo", str(self.port)],
                                         stdout=log, stderr=subprocess.STDOUT, cwd=str(ROOT))

    def wait_ready(self, timeout=30):
        import socket

        def accepts():
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1):
                    return True
            except OSError:
                return False
        if not poll(lambda: self.proc.poll() is not None or accepts(), timeout) or self.proc.poll() is not None:
            raise RuntimeError(f"ws_echo did not start:\n{self.log_path.read_text()[-3000:]}")

    def stop(self):
        stop_process(self.proc)


def cross_origin_counters(envoy, build):
    """`cors.actual.denied_cross_origin` and `cors.shadow.actual.denied_cross_origin` now."""
    names = {f"{PREFIX[build]}.cors.actual.denied_cross_origin": "enforce",
             f"{PREFIX[build]}.cors.shadow.actual.denied_cross_origin": "report"}
    stats = envoy.stats("denied_cross_origin")
    return {mode: int(stats.get(name, "0")) for name, mode in names.items()}


@pytest.fixture(scope="module")
def run(build, tmp_path_factory):
    if chromium_binary() is None:
        pytest.fail("chromium is required for the browser tests: scripts/setup.sh installs Debian's chromium")
    work = tmp_path_factory.mktemp("cross-origin")
    tls_dir = work / "tls"
    spki = demo_tls(tls_dir)
    ports = {name: free_port() for name in ["allowed", "refused", *MODES, "h2", "gate", "upstream", "admin"]}
    allowed_origin = f"http://localhost:{ports['allowed']}"
    access_log = work / "api.log"
    ws = WebSocketServer(work / "ws.log")
    apis = [api_listener(build, mode, ports[mode], mode, allowed_origin, access_log) for mode in MODES]
    apis.append(api_listener(build, "h2", ports["h2"], "enforce", allowed_origin, access_log, tls_dir))
    upstream = upstream_listener(ports["upstream"])
    clusters = [upstream_cluster(ports["upstream"]), upstream_cluster(ws.port, name="ws")]
    config = bootstrap([page_listener("allowed-page", ports["allowed"]),
                        page_listener("refused-page", ports["refused"]), gate_listener(ports["gate"]), *apis,
                        upstream],
                       clusters, ports["admin"])
    envoy = None
    started = time.monotonic()
    try:
        envoy = Envoy(config)
        ws.wait_ready()
        apis_query = {mode: f"http://localhost:{ports[mode]}" for mode in MODES}
        apis_query["h2"] = f"https://localhost:{ports['h2']}"
        apis_query["gate"] = f"http://localhost:{ports['gate']}/"
        flags = [f"--ignore-certificate-errors-spki-list={spki}"]
        pages = {}
        for role in ROLES:
            query = urllib.parse.urlencode({"role": role, **apis_query})
            pages[role] = page_results(dump_dom_at_load(f"http://localhost:{ports[role]}/?{query}", *flags))
        # A top-level navigation from the refused page to the enforcing API: the API's answer is
        # what the window shows.
        query = urllib.parse.urlencode({"role": "refused-top", "navigate": apis_query["enforce"]})
        navigation = dump_dom(f"http://localhost:{ports['refused']}/?{query}", *flags)
        log = read_access_log(access_log, envoy.admin_port)
        # The filter adds its counts to Envoy's within a second (Wasm: on its timer).
        expected = {"enforce": 4, "report": 3}
        poll(lambda: cross_origin_counters(envoy, build) == expected, 10)
        counters = cross_origin_counters(envoy, build)
    finally:
        if envoy is not None:
            envoy.stop()
        ws.stop()
    assert "panicked" not in envoy.log()
    return {"pages": pages, "navigation": navigation, "log": log, "counters": counters,
            "origins": {role: f"http://localhost:{ports[role]}" for role in ROLES},
            "seconds": time.monotonic() - started}


def seen(run, role, case):
    found = [r for r in run["pages"][role]["results"] if r["id"] == case]
    assert len(found) == 1, f"no result for {case} from the {role} page: {run['pages'][role]}"
    return found[0]


def requests(run, api, path, role):
    """The access log's lines for `path` (tagged `from=role`) on `api`: (method, status, protocol,
    reached upstream)."""
    out = []
    for name, method, full_path, origin, status, protocol, upstream_host, site in run["log"]:
        if name == api and full_path.startswith(f"/{path}?from={role}"):
            out.append((method, status, protocol, upstream_host != "-"))
    return out


def reached(run, api, path, role, method="POST"):
    return [r for r in requests(run, api, path, role) if r[0] == method and r[3]]


# (case, role) -> whether it reaches the upstream, by mode.
UNSAFE = ("form-post", "no-cors-post")


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("case", UNSAFE)
def test_a_refused_pages_simple_post_reaches_the_upstream_only_without_enforce(run, case, mode):
    got = requests(run, mode, case, "refused")
    assert [r[0] for r in got] == ["POST"], got
    [(_, status, _, upstream)] = got
    if mode == "enforce":
        assert (status, upstream) == ("403", False), got
    else:
        assert (status, upstream) == ("200", True), got


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("case", UNSAFE)
def test_the_allowed_pages_simple_post_reaches_the_upstream_in_every_mode(run, case, mode):
    assert len(reached(run, mode, case, "allowed")) == 1, requests(run, mode, case, "allowed")


def test_report_counts_what_enforce_would_refuse_and_enforce_counts_its_refusals(run):
    # report: the refused page's form POST, no-cors POST and WebSocket; enforce: the same on the
    # HTTP/1.1 API and the WebSocket over HTTP/2.
    assert run["counters"] == {"report": 3, "enforce": 4}


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("role", ROLES)
def test_a_get_is_unaffected(run, role, mode):
    assert len(reached(run, mode, "get", role, method="GET")) == 1
    got = seen(run, role, f"{mode}:get")
    if role == "allowed":
        assert got == {"id": f"{mode}:get", "ok": True, "type": "cors", "status": 200}
    else:
        assert got["error"].startswith("TypeError"), got  # CORS hides it, as before


def test_a_top_level_navigation_from_the_refused_page_is_unaffected(run):
    assert "upstream body" in run["navigation"], run["navigation"][-2000:]
    assert len(reached(run, "enforce", "navigate", "refused-top", method="GET")) == 1


@pytest.mark.parametrize("mode", MODES)
def test_the_allowed_pages_credentialed_post_passes(run, mode):
    assert seen(run, "allowed", f"{mode}:credentialed-post") == {
        "id": f"{mode}:credentialed-post", "ok": True, "type": "cors", "status": 200}
    methods = [r[0] for r in requests(run, mode, "credentialed-post", "allowed")]
    assert methods == ["OPTIONS", "POST"], methods
    # From the refused page the preflight fails (CORS), so the POST is never sent.
    assert [r[0] for r in requests(run, mode, "credentialed-post", "refused")] == ["OPTIONS"]


@pytest.mark.parametrize("mode", MODES)
def test_a_websocket_from_the_refused_page_connects_only_without_enforce(run, mode):
    got = seen(run, "refused", f"{mode}:websocket")
    [(method, status, _, upstream)] = requests(run, mode, "ws", "refused")
    if mode == "enforce":
        assert got["opened"] is False, got
        assert (status, upstream) == ("403", False)
    else:
        assert got.get("echo") == "echo:ping", got
        assert upstream


@pytest.mark.parametrize("mode", MODES)
def test_a_websocket_from_the_allowed_page_connects_to_the_real_server(run, mode):
    got = seen(run, "allowed", f"{mode}:websocket")
    assert got.get("echo") == "echo:ping", got
    [(method, status, protocol, upstream)] = requests(run, mode, "ws", "allowed")
    assert (method, protocol, upstream) == ("GET", "HTTP/1.1", True)


def test_over_http2_the_allowed_pages_websocket_connects_and_the_refused_pages_is_refused(run):
    assert seen(run, "allowed", "h2:warm")["status"] == 200
    got = seen(run, "allowed", "h2:websocket")
    assert got.get("echo") == "echo:ping", got
    [(_, _, protocol, upstream)] = requests(run, "h2", "ws", "allowed")
    assert (protocol, upstream) == ("HTTP/2", True), run["log"]
    assert seen(run, "refused", "h2:websocket")["opened"] is False
    [(_, status, protocol, upstream)] = requests(run, "h2", "ws", "refused")
    assert (status, protocol, upstream) == ("403", "HTTP/2", False)
