"""The browsers of the browser tests and `make screenshot`, and the demo configuration
(envoy/demo.yaml) on ports of the caller's choosing.

Two engines, Debian's both (scripts/setup.sh installs them): Chromium (`chromium`), driven with
`--dump-dom` and a virtual time budget, and Firefox (`firefox-esr`, tests/harness/firefox.py), to
which the page posts its results. One process per page load, a fresh profile each time, no driver,
no DevTools client, nothing downloaded at run time. `page_results_in(engine, url, ...)` is the one
entry point the suites call; the `engine` fixture runs a suite once per engine (test ids name it).
A missing browser fails the tests, with or without CI=true: they are never skipped.
"""

import json
import os
import re
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import pytest
import yaml

from tests.harness import firefox
from tests.harness.envoy import ROOT, Envoy, free_port, native_filter, request

CHROMIUM_FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--disable-extensions", "--mute-audio",
    "--hide-scrollbars",
]
DEMO_PORTS = {"page": 8080, "peer": 8081, "api": 10000, "api_tls": 10443, "backend": 10001, "down": 10009,
              "admin": 9901}
SCREENSHOT_SIZE = (1400, 880)
ACCESS_LOG_FORMAT = "%REQ(:METHOD)% %REQ(:PATH)% %REQ(ORIGIN)% %RESPONSE_CODE% %PROTOCOL%\n"
# The API's listeners: plain HTTP, TLS on TCP (HTTP/2 or HTTP/1.1), QUIC (HTTP/3).
API_LISTENERS = ("api", "api-tls", "api-h3")


def chromium_binary():
    """Debian's chromium, or a clear failure under CI=true (never a skip there)."""
    for candidate in (os.environ.get("CHROMIUM"), "/usr/bin/chromium", shutil.which("chromium"),
                      shutil.which("chromium-browser")):
        if candidate and os.path.exists(candidate):
            return candidate
    return None


def run_chromium(url, *extra, budget_ms=30000, timeout=90):
    """One headless Chromium run on a fresh profile; returns its stdout."""
    binary = chromium_binary()
    if binary is None:
        raise RuntimeError("chromium not found: scripts/setup.sh installs Debian's chromium")
    profile = tempfile.mkdtemp(prefix="cors-chromium-")
    try:
        p = subprocess.run(
            [binary, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", f"--virtual-time-budget={budget_ms}",
             *extra, url],
            capture_output=True, text=True, errors="replace", timeout=timeout, cwd=profile,
        )
    finally:
        shutil.rmtree(profile, ignore_errors=True)
    if p.returncode != 0:
        raise RuntimeError(f"chromium exited with {p.returncode}:\n{p.stderr[-3000:]}")
    return p.stdout


def dump_dom(url, *extra, **kw):
    return run_chromium(url, "--dump-dom", *extra, **kw)


def screenshot(url, path, width=1400, height=900, *extra, **kw):
    """Renders `url` (after its fetches settle) into the PNG at `path`."""
    path = os.path.abspath(path)
    if os.path.exists(path):
        os.remove(path)
    run_chromium(url, f"--screenshot={path}", f"--window-size={width},{height}", *extra, **kw)
    if not os.path.exists(path):
        raise RuntimeError(f"chromium wrote no screenshot to {path}")
    return path


def page_results(dom):
    """The JSON the demo page writes into <pre id="results" data-done="true">."""
    m = re.search(r'<pre id="results"[^>]*data-done="true"[^>]*>(.*?)</pre>', dom, re.S)
    if m is None:
        raise AssertionError("the page did not finish (no results in the DOM):\n" + dom[-3000:])
    text = m.group(1).replace("&quot;", '"').replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")
    return json.loads(text)


ENGINES = ("chromium", "firefox")


def engine_binary(engine):
    return chromium_binary() if engine == "chromium" else firefox.firefox_binary()


@pytest.fixture(scope="module", params=ENGINES)
def engine(request):
    """The browser engine a suite runs in: every test of a module that uses it runs once per engine."""
    if engine_binary(request.param) is None:
        pytest.fail(f"{request.param} is required for the browser tests: scripts/setup.sh installs Debian's "
                    + ("chromium" if request.param == "chromium" else "firefox-esr"))
    return request.param


def chromium_flags(tls_dir=None, quic_origin=None):
    """Chromium's flags to reach an HTTPS origin with the certificate of `tls_dir` (scripts/demo_tls.py),
    trusted by its public key, and with `quic_origin` ("host:port") over QUIC only."""
    flags = []
    if tls_dir is not None:
        spki = (Path(tls_dir) / "spki.txt").read_text().strip()
        flags.append(f"--ignore-certificate-errors-spki-list={spki}")
    if quic_origin:
        # Chromium sends QUIC for localhost to ::1 only; Envoy listens on 127.0.0.1.
        flags += ["--enable-quic", f"--origin-to-force-quic-on={quic_origin}",
                  "--host-resolver-rules=MAP localhost 127.0.0.1"]
    return flags


def firefox_setup(tls_dir=None, quic_origin=None):
    """Firefox's prefs and the certificate to import for the same."""
    if tls_dir is None:
        return {}, None
    return firefox.https_prefs(quic_origin), Path(tls_dir) / "cert.pem"


def page_results_in(engine, url, tls_dir=None, quic_origin=None, timeout=90):
    """Loads `url` (web/index.html or web/protocols/index.html) in `engine` and returns the JSON the
    page wrote into <pre id="results">: from Chromium's --dump-dom, or as Firefox posted it."""
    if engine == "chromium":
        return page_results(dump_dom(url, *chromium_flags(tls_dir, quic_origin), timeout=timeout))
    prefs, certificate = firefox_setup(tls_dir, quic_origin)
    return json.loads(firefox.posted_results(url, prefs, certificate, timeout=timeout))


def screenshot_in(engine, url, path, width, height, tls_dir=None, quic_origin=None):
    """A PNG of `url` in `engine`: Chromium's once the page's fetches settled (virtual time), Firefox's
    when the page has loaded (its --screenshot does not wait for the fetches)."""
    if engine == "chromium":
        return screenshot(url, path, width, height, *chromium_flags(tls_dir, quic_origin))
    prefs, certificate = firefox_setup(tls_dir, quic_origin)
    return firefox.screenshot(url, path, width, height, prefs, certificate)


def free_ports():
    return {name: free_port() for name in DEMO_PORTS}


def demo_url(ports):
    """The demo page, told where the API and the peer page (another origin) are."""
    host = "http://localhost"
    return f"{host}:{ports['page']}/?api={host}:{ports['api']}&peer={host}:{ports['peer']}"


def start_demo_envoy(ports, access_log, tls_dir, build="wasm"):
    """envoy/demo.yaml on `ports`; fails when a port is in use (no port is shared)."""
    return Envoy(demo_config(ports, access_log, tls_dir, build))


def demo_config(ports, access_log, tls_dir, build="wasm"):
    """envoy/demo.yaml on `ports` (a DEMO_PORTS-shaped dict), bound to 127.0.0.1, with the
    certificate of `tls_dir` (scripts/demo_tls.py) and the API listeners' requests written to
    `access_log` (method, path, origin, status, protocol per line). Ports in the allowed origins
    follow the page's port. With `build="native"` the CORS filter is the dynamic module, with the
    same plugin configuration."""
    config = yaml.safe_load((ROOT / "envoy" / "demo.yaml").read_text())
    text = json.dumps(config).replace('"build/demo-tls/', json.dumps(f"{tls_dir}/")[:-1])
    text = text.replace('"0.0.0.0"', '"127.0.0.1"')
    mapping = {DEMO_PORTS[name]: ports[name] for name in DEMO_PORTS}
    text = re.sub(r'"port_value": (\d+)', lambda m: f'"port_value": {mapping.get(int(m.group(1)), m.group(1))}', text)
    # Origins in the policy, e.g. "http://localhost:8080".
    text = re.sub(r'(https?://[a-z0-9.\-]+):(\d+)"',
                  lambda m: f'{m.group(1)}:{mapping.get(int(m.group(2)), m.group(2))}"', text)
    config = json.loads(text)
    for listener in config["static_resources"]["listeners"]:
        # Envoy sets SO_REUSEPORT by default: a second Envoy on the same ports would start and
        # share the traffic. Without it, a port in use fails the start.
        listener["enable_reuse_port"] = False
        if listener["name"] in API_LISTENERS:
            hcm = listener["filter_chains"][0]["filters"][0]["typed_config"]
            if build == "native":
                ours = hcm["http_filters"][0]
                assert ours["name"] == "envoy.filters.http.wasm", "the demo's CORS filter comes first"
                hcm["http_filters"][0] = native_filter(ours["typed_config"]["config"]["configuration"]["value"])
            hcm["access_log"] = [{
                "name": "envoy.access_loggers.file",
                "typed_config": {
                    "@type": "type.googleapis.com/envoy.extensions.access_loggers.file.v3.FileAccessLog",
                    "path": str(access_log),
                    "log_format": {"text_format_source": {"inline_string": ACCESS_LOG_FORMAT}},
                },
            }]
    return config


def read_access_log(path, admin_port, rounds=50):
    """The API's access log as (method, path, origin, status, protocol) tuples. Envoy buffers file access
    logs (flushed every 10 s by default); POST /reopen_logs makes it write them out now. Asks
    again until two flushes 0.2 s apart leave the same content."""
    last = None
    for _ in range(rounds):
        status, _, _ = request(admin_port, "POST", "/reopen_logs")
        assert status == 200
        time.sleep(0.2)
        try:
            with open(path) as f:
                text = f.read()
        except FileNotFoundError:
            text = ""
        if text and text == last:
            break
        last = text
    return [tuple(line.split(" ")) for line in (last or "").splitlines() if line]


def dump_dom_at_load(url, *extra, timeout=90):
    """The DOM once the window's load event has fired, in real time (no virtual time budget):
    for pages that hold their load event until they are done (web/cross-origin/index.html),
    because they wait for WebSocket events, which Chromium's virtual time holds back."""
    binary = chromium_binary()
    if binary is None:
        raise RuntimeError("chromium not found: scripts/setup.sh installs Debian's chromium")
    profile = tempfile.mkdtemp(prefix="cors-chromium-")
    try:
        p = subprocess.run([binary, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", "--dump-dom", *extra, url],
                           capture_output=True, text=True, errors="replace", timeout=timeout, cwd=profile)
    finally:
        shutil.rmtree(profile, ignore_errors=True)
    if p.returncode != 0:
        raise RuntimeError(f"chromium exited with {p.returncode}:\n{p.stderr[-3000:]}")
    return p.stdout
