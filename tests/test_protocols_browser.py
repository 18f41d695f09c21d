"""gRPC-Web, Connect and MCP from a real browser, in both engines (Chromium and Firefox, the `engine`
fixture of tests/harness/browser.py): the browser loads web/protocols/index.html
from one origin and calls each protocol's real server through Envoy with the CORS filter first,
on other origins. Envoy runs the configurations docs/protocols.md shows (envoy/grpc-web.yaml,
envoy/connect.yaml, envoy/mcp.yaml), with ports and the allowed origin rewritten and
`max_age: 0` (so every call is preflighted and the access log shows what each one asked for).

The servers (tests/protocol_servers/): a gRPC server in grpcio behind Envoy's grpc_web filter, a
Connect server in connectrpc, and an MCP server in the official `mcp` SDK (Streamable HTTP, with
bearer-token auth). Each protocol's listener also runs without its preset: with the policy's
`presets` removed, and (gRPC-Web, MCP) with the preset's request headers copied into
`allow_headers` but nothing exposed, as copied examples often do. The page writes what the
browser let it see into the DOM as JSON; Envoy's access log tells which request headers
the browser named in each preflight (`Access-Control-Request-Headers`): both engines name the same,
sorted and lower-case as the Fetch standard says, so every assertion holds for both."""

import copy
import socket
import subprocess
import sys
import time
import urllib.parse
from collections import defaultdict

import pytest
import yaml

from tests.harness.browser import engine, page_results_in, read_access_log  # noqa: F401 (engine: fixture)
from tests.harness.envoy import ROOT, Envoy, bootstrap, direct_route, free_port, hcm, listener, poll, stop_process

CONFIGS = {protocol: ROOT / "envoy" / f"{protocol}.yaml" for protocol in ("grpc-web", "connect", "mcp")}
SERVERS = ROOT / "tests" / "protocol_servers"
PAGE = "web/protocols/index.html"

# What a copied example without `expose_headers` lists: the preset's request headers only.
REQUEST_HEADERS_ONLY = {
    "grpc-web": "content-type, x-grpc-web, x-user-agent, grpc-timeout",
    "mcp": "content-type, authorization, mcp-session-id, mcp-protocol-version, last-event-id",
}
ENDPOINTS = {"grpc-web": ["grpc-web", "grpc-web-no-preset", "grpc-web-no-expose"],
             "connect": ["connect", "connect-no-preset"],
             "mcp": ["mcp", "mcp-no-preset", "mcp-no-expose"]}
# The calls web/protocols/index.html makes, in its order.
CALLS = ["grpc-web-ok", "grpc-web-error", "grpc-web-timeout", "grpc-web-ok-no-preset", "grpc-web-error-no-preset",
         "grpc-web-error-no-expose",
         "connect-ok", "connect-error", "connect-ok-no-preset",
         "mcp-unauthorized", "mcp-resource-metadata", "mcp-initialize", "mcp-initialized", "mcp-tool-call",
         "mcp-stateless-tool-call", "mcp-unauthorized-no-preset", "mcp-unauthorized-no-expose",
         "mcp-initialize-no-expose"]
ACCESS_LOG_FORMAT = "%REQ(:METHOD)% %REQ(:PATH)% %REQ(ORIGIN)% %RESPONSE_CODE% %REQ(ACCESS-CONTROL-REQUEST-HEADERS)%"


def policy_of(lst):
    return hcm(lst)["http_filters"][0]["typed_config"]["config"]["configuration"]["value"]["policy"]


def endpoint_listener(template, endpoint, port, page_origin, access_log):
    """The shipped listener as `endpoint`: on 127.0.0.1:`port`, allowing `page_origin`, with the
    policy changed as the endpoint's name says, and an access log whose lines start with the
    endpoint's name."""
    lst = copy.deepcopy(template)
    lst["name"] = endpoint
    lst["address"]["socket_address"].update(address="127.0.0.1", port_value=port)
    # Envoy sets SO_REUSEPORT by default: an Envoy of another test run on the same port would
    # share the traffic. Without it, a port in use fails the start.
    lst["enable_reuse_port"] = False
    policy = policy_of(lst)
    policy["allow_origins"] = [page_origin]
    policy["max_age"] = 0
    protocol = policy["presets"][0]
    if endpoint.endswith("-no-preset"):
        del policy["presets"]
    elif endpoint.endswith("-no-expose"):
        del policy["presets"]
        policy["allow_headers"] = REQUEST_HEADERS_ONLY[protocol]
    hcm(lst)["access_log"] = [{
        "name": "envoy.access_loggers.file",
        "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.access_loggers.file.v3.FileAccessLog",
            "path": str(access_log),
            "log_format": {"text_format_source": {"inline_string": f"{endpoint} {ACCESS_LOG_FORMAT}\n"}},
        },
    }]
    return lst


def page_listener(port):
    lst = listener("page", port, [], [{"name": "page", "domains": ["*"], "routes": [
        direct_route(body={"filename": PAGE}, headers=[("content-type", "text/html; charset=utf-8")])]}])
    lst["enable_reuse_port"] = False
    hcm(lst)["route_config"]["max_direct_response_body_size_bytes"] = 1048576
    return lst


def protocol_config(ports, server_ports, page_origin, access_log):
    listeners, clusters = [page_listener(ports["page"])], []
    for protocol, path in CONFIGS.items():
        shipped = yaml.safe_load(path.read_text())["static_resources"]
        [template] = shipped["listeners"]
        [cluster] = shipped["clusters"]
        address = cluster["load_assignment"]["endpoints"][0]["lb_endpoints"][0]["endpoint"]["address"]
        address["socket_address"]["port_value"] = server_ports[protocol]
        clusters.append(cluster)
        listeners += [endpoint_listener(template, endpoint, ports[endpoint], page_origin, access_log)
                      for endpoint in ENDPOINTS[protocol]]
    return bootstrap(listeners, clusters, ports["admin"])


class Server:
    """One protocol server (a script in tests/protocol_servers/) starting on 127.0.0.1:`port`;
    `wait_ready` returns once it accepts connections."""

    def __init__(self, script, port, *args, log_dir):
        self.script, self.port = script, port
        self.log_path = log_dir / f"{script}.log"
        with open(self.log_path, "w") as log:
            self.proc = subprocess.Popen([sys.executable, str(SERVERS / script), str(port), *args],
                                         stdout=log, stderr=subprocess.STDOUT, cwd=str(ROOT))

    def wait_ready(self, timeout=60):
        if not poll(lambda: self.proc.poll() is not None or self._accepts(), timeout) or self.proc.poll() is not None:
            raise RuntimeError(f"{self.script} did not start:\n{self.log_path.read_text()[-3000:]}")

    def _accepts(self):
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=1):
                return True
        except OSError:
            return False

    def stop(self):
        stop_process(self.proc)


@pytest.fixture(scope="module")
def run(tmp_path_factory, engine):
    work = tmp_path_factory.mktemp("protocols")
    host = "http://localhost"
    endpoints = [e for names in ENDPOINTS.values() for e in names]
    ports = {name: free_port() for name in ["page", "admin", *endpoints]}
    page_origin = f"{host}:{ports['page']}"
    mcp_url = f"{host}:{ports['mcp']}/mcp"
    started = time.monotonic()
    scripts = {"grpc-web": ["grpc_greeter.py"], "connect": ["connect_greeter.py"], "mcp": ["mcp_server.py", mcp_url]}
    servers = {}
    envoy = None
    try:
        # The servers start (mcp's imports take a few seconds) while Envoy does.
        for protocol, (script, *args) in scripts.items():
            servers[protocol] = Server(script, free_port(), *args, log_dir=work)
        access_log = work / "access.log"
        server_ports = {protocol: server.port for protocol, server in servers.items()}
        envoy = Envoy(protocol_config(ports, server_ports, page_origin, access_log))
        for server in servers.values():
            server.wait_ready()
        query = urllib.parse.urlencode({e: f"{host}:{ports[e]}" for e in endpoints})
        results = page_results_in(engine, f"{page_origin}/?{query}")
        log = read_access_log(access_log, envoy.admin_port)
    finally:
        if envoy is not None:
            envoy.stop()
        for server in servers.values():
            server.stop()
    assert "panicked" not in envoy.log()
    return {"results": results, "log": log, "page": page_origin, "ports": ports, "mcp_url": mcp_url,
            "seconds": time.monotonic() - started, "engine": engine}


def result(run, case):
    found = [r for r in run["results"]["results"] if r["id"] == case]
    assert len(found) == 1, f"no result for {case}: {run['results']}"
    return found[0]


def read(run, case, status):
    """The call went through and the page read `status`."""
    got = result(run, case)
    assert got["ok"], got
    assert got["status"] == status, got
    return got


def blocked(run, case):
    """The browser refused the call: a network error to the page, no status, no headers."""
    got = result(run, case)
    assert not got["ok"], got
    assert got["error"].startswith("TypeError"), got
    assert "status" not in got


def preflights(run, endpoint):
    """{path: [Access-Control-Request-Headers of each preflight]} on `endpoint`, from the access log."""
    asked = defaultdict(list)
    for name, method, path, origin, status, request_headers in run["log"]:
        if name == endpoint and method == "OPTIONS":
            assert origin == run["page"]
            asked[path].append(request_headers)
    return dict(asked)


def requests_after_preflight(run, endpoint, method="POST"):
    return [(path, status) for name, m, path, _, status, _ in run["log"] if name == endpoint and m == method]


def test_the_page_is_another_origin_than_every_endpoint(run):
    assert run["results"]["page"] == run["page"]
    assert all(f":{port}" not in run["page"] for name, port in run["ports"].items() if name != "page")


def test_the_page_made_every_call_once_and_its_script_ran_to_the_end(run):
    ids = [r["id"] for r in run["results"]["results"]]
    assert sorted(ids) == sorted(CALLS), run["results"]


# ---- gRPC-Web ----

GREETER = "/cors.test.Greeter"


def test_grpc_web_ok_unary_call_reads_the_reply_and_the_trailers(run):
    got = read(run, "grpc-web-ok", 200)
    assert got["messages"] == ["hello Ada"]
    assert got["trailers"]["grpc-status"] == "0"
    assert got["headers"]["content-type"] == "application/grpc-web+proto"


def test_grpc_web_error_is_trailers_only_and_the_page_reads_status_and_message_from_headers(run):
    got = read(run, "grpc-web-error", 200)
    assert got["bodyBytes"] == 0, got
    assert got["headers"]["grpc-status"] == "5"  # NOT_FOUND
    assert got["headers"]["grpc-message"] == "no greeting for Ada"


def test_grpc_web_call_with_grpc_timeout_reaches_the_server_with_its_deadline(run):
    got = read(run, "grpc-web-timeout", 200)
    [seconds_left] = got["messages"]
    assert 0 < float(seconds_left) <= 5.0, got


def test_grpc_web_preflights_asked_for_the_grpc_web_headers_and_were_answered(run):
    asked = preflights(run, "grpc-web")
    assert asked == {
        f"{GREETER}/Greet": ["content-type,x-grpc-web,x-user-agent"],
        f"{GREETER}/Fail": ["content-type,x-grpc-web,x-user-agent"],
        f"{GREETER}/Deadline": ["content-type,grpc-timeout,x-grpc-web,x-user-agent"],
    }
    assert sorted(requests_after_preflight(run, "grpc-web")) == [
        (f"{GREETER}/Deadline", "200"), (f"{GREETER}/Fail", "200"), (f"{GREETER}/Greet", "200")]


def test_grpc_web_without_the_preset_is_refused_at_the_preflight(run):
    blocked(run, "grpc-web-ok-no-preset")
    blocked(run, "grpc-web-error-no-preset")
    assert requests_after_preflight(run, "grpc-web-no-preset") == []


def test_grpc_web_without_exposed_headers_hides_the_error_from_the_page(run):
    """Allowed request headers but nothing exposed: the failed call looks like an empty 200."""
    got = read(run, "grpc-web-error-no-expose", 200)
    assert "grpc-status" not in got["headers"] and "grpc-message" not in got["headers"], got
    assert got["bodyBytes"] == 0 and got["messages"] == [] and got["trailers"] == {}


# ---- Connect ----

GREET_SERVICE = "/cors.test.v1.GreetService"


def test_connect_unary_call_reads_the_json_reply(run):
    got = read(run, "connect-ok", 200)
    assert got["json"]["greeting"] == "hello Ada"
    assert 0 < got["json"]["timeoutMs"] <= 5000, got  # connect-timeout-ms reached the server


def test_connect_error_reply_is_read_with_its_status_and_json_body(run):
    got = read(run, "connect-error", 404)
    assert got["json"] == {"code": "not_found", "message": "no greeting for Ada"}
    assert got["headers"]["content-type"] == "application/json"


def test_connect_preflights_asked_for_the_connect_headers_and_were_answered(run):
    assert preflights(run, "connect") == {
        f"{GREET_SERVICE}/Greet": ["connect-protocol-version,connect-timeout-ms,content-type"],
        f"{GREET_SERVICE}/Fail": ["connect-protocol-version,content-type"],
    }
    assert sorted(requests_after_preflight(run, "connect")) == [
        (f"{GREET_SERVICE}/Fail", "404"), (f"{GREET_SERVICE}/Greet", "200")]


def test_connect_without_the_preset_is_refused_at_the_preflight(run):
    blocked(run, "connect-ok-no-preset")
    assert requests_after_preflight(run, "connect-no-preset") == []


# ---- MCP Streamable HTTP ----

def test_mcp_without_a_token_the_page_reads_401_and_www_authenticate(run):
    got = read(run, "mcp-unauthorized", 401)
    challenge = got["headers"]["www-authenticate"]
    origin = run["mcp_url"].removesuffix("/mcp")
    assert challenge.startswith("Bearer "), challenge
    assert f'resource_metadata="{origin}/.well-known/oauth-protected-resource/mcp"' in challenge


def test_mcp_resource_metadata_named_by_the_challenge_is_readable(run):
    got = read(run, "mcp-resource-metadata", 200)
    assert got["json"]["resource"] == run["mcp_url"]


def test_mcp_initialize_with_a_token_starts_a_session_whose_id_the_page_reads(run):
    got = read(run, "mcp-initialize", 200)
    assert len(got["headers"]["mcp-session-id"]) >= 16, got
    [message] = got["messages"]
    assert message["id"] == 1 and message["result"]["protocolVersion"] == "2025-11-25"


def test_mcp_follow_up_requests_with_session_id_and_protocol_version_succeed(run):
    read(run, "mcp-initialized", 202)
    got = read(run, "mcp-tool-call", 200)
    [message] = got["messages"]
    assert message["result"]["content"] == [{"type": "text", "text": "hi"}], got
    session = result(run, "mcp-initialize")["headers"]["mcp-session-id"]
    assert got["headers"]["mcp-session-id"] == session


def test_mcp_2026_07_28_request_without_session_names_its_method_in_headers_and_succeeds(run):
    """The stateless revision: the SDK refuses such a request without `Mcp-Method` (400), so a
    browser needs `mcp-method` and `mcp-name` allowed (envoy/mcp.yaml adds them to the preset)."""
    got = read(run, "mcp-stateless-tool-call", 200)
    [message] = got["messages"]
    assert message["id"] == 3 and message["result"]["content"] == [{"type": "text", "text": "hi"}], got
    assert "mcp-session-id" not in got["headers"]


def test_mcp_preflights_asked_for_the_mcp_headers_and_were_answered(run):
    follow_up = "authorization,content-type,mcp-protocol-version,mcp-session-id"
    stateless = "authorization,content-type,mcp-method,mcp-name,mcp-protocol-version"
    assert preflights(run, "mcp") == {
        "/mcp": ["content-type", "authorization,content-type", follow_up, follow_up, stateless]}
    assert requests_after_preflight(run, "mcp") == [
        ("/mcp", "401"), ("/mcp", "200"), ("/mcp", "202"), ("/mcp", "200"), ("/mcp", "200")]


def test_mcp_without_the_preset_is_refused_at_the_preflight(run):
    blocked(run, "mcp-unauthorized-no-preset")
    assert requests_after_preflight(run, "mcp-no-preset") == []


def test_mcp_without_exposed_headers_hides_the_challenge_and_the_session(run):
    got = read(run, "mcp-unauthorized-no-expose", 401)
    assert "www-authenticate" not in got["headers"], got
    got = read(run, "mcp-initialize-no-expose", 200)
    assert "mcp-session-id" not in got["headers"], got


def test_report_what_the_browser_sent_and_read(run):
    """Prints, per endpoint, the request headers the browser named in its preflights (every endpoint
    had some) and the response headers each call let the page read (`pytest -s` shows it)."""
    lines = [f"protocol browser run in {run['engine']}: {run['seconds']:.1f} s (servers, Envoy, the browser)"]
    for names in ENDPOINTS.values():
        for endpoint in names:
            for path, asked in preflights(run, endpoint).items():
                lines.append(f"  {endpoint} preflight {path}: {' | '.join(asked)}")
    for got in run["results"]["results"]:
        seen = ", ".join(sorted(got["headers"])) if got["ok"] else got["error"]
        lines.append(f"  {got['id']}: {got.get('status', 'blocked')} readable: {seen}")
    print("\n".join(lines))
    assert all(preflights(run, endpoint) for names in ENDPOINTS.values() for endpoint in names)
