"""The filter judged by real browsers: headless Chromium and Firefox (the `engine` fixture of
tests/harness/browser.py) load the demo page (web/index.html, served by envoy/demo.yaml's page
listener) and run its scenario matrix against the API through Envoy with the filter, twice: as the
page's own origin (allowed by the policy), and embedded from the same host on another port
(another origin, refused). The page writes what the browser let each origin do as JSON (Chromium:
read from --dump-dom; Firefox: posted back by the page); these tests read it back. One browser run
covers all of it; a second one takes a screenshot, checked here and thrown away (`make screenshot`
writes docs/demo.png with Chromium: `make test` changes no tracked file).

All of it once per build of the filter (Wasm; native: the demo's plugin configuration in the
dynamic module), per engine and, for each, three times, once per protocol a browser reaches the API
with: HTTP/1.1 in clear text, HTTP/2 over TLS (ALPN h2) and HTTP/3 over QUIC, both on
envoy/demo.yaml's HTTPS port with a certificate made for the run (scripts/demo_tls.py). Chromium
trusts it by its public key (`--ignore-certificate-errors-spki-list`), is told to use QUIC for the
API's origin (`--origin-to-force-quic-on`) and to resolve localhost to 127.0.0.1 (it would send
QUIC to ::1 only). Firefox gets the certificate in its profile's NSS database and prefs that send
every request to the API's origin over QUIC (tests/harness/firefox.py). Envoy's access log
(%PROTOCOL%) shows which protocol each request came in over.

Where the engines differ by design, these scenarios stay clear of it, so one table of expected
verdicts holds for both: the preflight cache's cap on Access-Control-Max-Age (Chromium 2 h, Firefox
24 h) is far above the demo's max_age 600, and Private Network Access (Chromium only) does not
apply between two loopback origins.

Both browsers are required: a missing one fails these tests (under CI=true and everywhere else)."""

import struct
from collections import Counter

import pytest

from scripts.demo_tls import make as demo_tls
from tests.harness.browser import (SCREENSHOT_SIZE, engine, free_ports, page_results_in,  # noqa: F401 (fixture)
                                   read_access_log, screenshot_in, start_demo_envoy)


def OK(status, **extra):
    return {"ok": True, "status": status, **extra}


BLOCKED = {"ok": False}

# What the browser must do, per scenario of the page: (page on the allowed origin, page on the
# refused origin). Written here independently of the page's own expectations.
EXPECTED = {
    "simple-get": (OK(200), BLOCKED),
    "json-post": (OK(200), BLOCKED),                  # preflighted: JSON + x-demo
    "credentialed-put": (OK(200), BLOCKED),           # credentials: "include"
    "refused-method": (BLOCKED, BLOCKED),             # DELETE
    "refused-header": (BLOCKED, BLOCKED),             # authorization
    "exposed-header": (OK(200, read="visible to the page"), BLOCKED),
    "hidden-header": (OK(200, read=None), BLOCKED),
    "any-origin": (OK(200), OK(200)),                 # routes.public: ["*"]
    "preflight-cached": (OK(200), BLOCKED),
    "jwt-401": (OK(401), BLOCKED),                    # jwt_authn's own reply, readable
    "ratelimit-429": (OK(429), BLOCKED),              # local_ratelimit's own reply, readable
    "upstream-down-503": (OK(503), BLOCKED),          # the router's own reply, readable
    "cors-off": (BLOCKED, BLOCKED),                   # routes.internal: null
}
ROLES = ("allowed", "refused")
PROTOCOLS = ("HTTP/1.1", "HTTP/2", "HTTP/3")


def api_origin(protocol, ports):
    """The API's origin for the page, and the origin to reach over QUIC (HTTP/3 only)."""
    if protocol == "HTTP/1.1":
        return f"http://localhost:{ports['api']}", None
    origin = f"localhost:{ports['api_tls']}"
    return f"https://{origin}", origin if protocol == "HTTP/3" else None


@pytest.fixture(scope="module", params=PROTOCOLS)
def run(request, tmp_path_factory, build, engine):
    protocol = request.param
    d = tmp_path_factory.mktemp("browser")
    access_log = d / "api-access.log"
    demo_tls(d / "tls")
    ports = free_ports()
    envoy = start_demo_envoy(ports, access_log, d / "tls", build)
    host = "http://localhost"
    api, quic_origin = api_origin(protocol, ports)
    tls = None if protocol == "HTTP/1.1" else d / "tls"
    url = f"{host}:{ports['page']}/?api={api}&peer={host}:{ports['peer']}"
    shot = d / "demo.png"
    try:
        results = page_results_in(engine, url, tls, quic_origin)
        log = read_access_log(access_log, envoy.admin_port)
        screenshot_in(engine, url, shot, *SCREENSHOT_SIZE, tls, quic_origin)
    finally:
        envoy.stop()
    assert "panicked" not in envoy.log()
    return {"ports": ports, "results": results, "log": log, "host": host, "screenshot": shot,
            "protocol": protocol, "engine": engine}


def verdict(run, scenario, role):
    found = [r for r in run["results"][role] or [] if r["id"] == scenario]
    assert len(found) == 1, f"no result for {scenario} from the {role} page: {run['results']}"
    return found[0]


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("scenario", EXPECTED)
def test_browser_verdict(run, scenario, role):
    expected = EXPECTED[scenario][ROLES.index(role)]
    got = verdict(run, scenario, role)
    assert got["ok"] == expected["ok"], got
    if expected["ok"]:
        assert got["status"] == expected["status"], got
        if "read" in expected:
            assert got["read"] == expected["read"], got
    else:
        # A CORS refusal is a network error to the page: no status, no headers.
        assert got["error"].startswith("TypeError"), got
        assert "status" not in got


def test_the_two_pages_are_different_origins_on_the_same_host(run):
    r = run["results"]
    assert r["page"] == f"http://localhost:{run['ports']['page']}"
    assert r["peer"] == f"http://localhost:{run['ports']['peer']}"
    assert r["page"] != r["peer"]


def test_the_demo_page_shows_the_same_matrix_and_all_as_expected(run):
    """The page's own table (what a human sees at `make demo`) expects what these tests expect,
    and found every verdict as expected."""
    page_expected = run["results"]["expected"]
    assert set(page_expected) == set(EXPECTED)
    for scenario, (allowed, refused) in EXPECTED.items():
        assert page_expected[scenario] == {"allowed": allowed, "refused": refused}, scenario
    assert run["results"]["total"] == 2 * len(EXPECTED)
    assert run["results"]["as_expected"] == run["results"]["total"]


def requests_seen(run, method, path, role):
    origin = run["results"]["page"] if role == "allowed" else run["results"]["peer"]
    return Counter((m, p, o) for m, p, o, *_ in run["log"])[(method, path, origin)]


def test_second_call_sent_no_preflight_within_max_age(run):
    """Two identical preflighted PUTs: the allowed page's browser sent one preflight (cached
    for max_age 600) and both PUTs; the refused page's browser got no usable answer, cached
    nothing, asked twice, and never sent the PUT."""
    seen = [line for line in run["log"] if line[1] == "/api/cached"]
    assert requests_seen(run, "OPTIONS", "/api/cached", "allowed") == 1, seen
    assert requests_seen(run, "PUT", "/api/cached", "allowed") == 2, seen
    assert requests_seen(run, "OPTIONS", "/api/cached", "refused") == 2, seen
    assert requests_seen(run, "PUT", "/api/cached", "refused") == 0, seen


@pytest.mark.parametrize("path, status", [("/api/private", "401"), ("/api/limited", "429"), ("/api/down", "503")])
def test_refused_page_is_blocked_by_the_browser_not_by_the_network(run, path, status):
    """The refused page's request did reach Envoy and got the same status as the allowed
    page's: only the missing Access-Control-Allow-Origin made the browser hide it."""
    origins = {role: run["results"]["page" if role == "allowed" else "peer"] for role in ROLES}
    for role in ROLES:
        statuses = [s for m, p, o, s, _ in run["log"] if m == "GET" and p == path and o == origins[role]]
        assert statuses and statuses[-1] == status, (role, statuses)


def test_refused_preflights_never_let_the_actual_request_through(run):
    """DELETE and the Authorization header were refused at the preflight: the browser never
    sent them, from either page."""
    for role in ROLES:
        assert requests_seen(run, "DELETE", "/api/items/1", role) == 0
        assert requests_seen(run, "OPTIONS", "/api/items/1", role) >= 1
    assert not [line for line in run["log"] if line[0] == "GET" and line[1] == "/api/hello"
                and line[2] == run["results"]["page"] and line[3] != "200"]


def test_screenshot_of_the_demo_page_was_taken(run):
    data = run["screenshot"].read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", data[16:24])
    assert (width, height) == SCREENSHOT_SIZE
    assert len(data) > 50_000  # a rendered table, not a blank page


def test_the_browser_reached_the_api_over_the_protocol_under_test(run):
    """Every request of the matrix (preflights, credentialed requests, the 401 from jwt_authn)
    came in over this run's protocol, according to Envoy."""
    protocols = Counter(line[4] for line in run["log"])
    assert protocols == {run["protocol"]: len(run["log"])}, protocols
    seen = {(m, p) for m, p, *_ in run["log"]}
    assert {("OPTIONS", "/api/items"), ("PUT", "/api/items/1"), ("GET", "/api/private")} <= seen
