"""Headless Firefox (Debian's `firefox-esr`, installed by scripts/setup.sh) for the browser tests.

Firefox has no `--dump-dom`: the page is loaded with `?report=URL` and posts its results there
(web/index.html and web/protocols/index.html do, once done), to a collector this module runs on
127.0.0.1. One Firefox process per page load, on a fresh profile: prefs in `user.js` (no first-run
pages, no telemetry, no update or safe-browsing traffic, nothing fetched from outside), and, for
HTTPS, the run's self-signed certificate imported into the profile's NSS database with `certutil`
(Debian's libnss3-tools) as a trusted peer. No driver, no remote protocol.
"""

import os
import shutil
import signal
import subprocess
import tempfile
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

# Quiet, offline, deterministic: nothing but the test's own origins is contacted.
PREFS = {
    "browser.shell.checkDefaultBrowser": False,
    "browser.startup.page": 0,
    "browser.startup.homepage_override.mstone": "ignore",
    "browser.aboutwelcome.enabled": False,
    "startup.homepage_welcome_url": "",
    "startup.homepage_welcome_url.additional": "",
    "browser.newtabpage.enabled": False,
    "browser.tabs.warnOnClose": False,
    "browser.sessionstore.resume_from_crash": False,
    "datareporting.policy.dataSubmissionEnabled": False,
    "datareporting.healthreport.uploadEnabled": False,
    "toolkit.telemetry.enabled": False,
    "toolkit.telemetry.unified": False,
    "toolkit.telemetry.server": "",
    "app.update.enabled": False,
    "app.update.auto": False,
    "app.normandy.enabled": False,
    "app.shield.optoutstudies.enabled": False,
    "extensions.update.enabled": False,
    "extensions.getAddons.cache.enabled": False,
    "extensions.systemAddon.update.enabled": False,
    "browser.safebrowsing.malware.enabled": False,
    "browser.safebrowsing.phishing.enabled": False,
    "browser.safebrowsing.downloads.enabled": False,
    "browser.safebrowsing.downloads.remote.enabled": False,
    "browser.safebrowsing.provider.google4.updateURL": "",
    "browser.safebrowsing.provider.mozilla.updateURL": "",
    "network.captive-portal-service.enabled": False,
    "network.connectivity-service.enabled": False,
    "network.trr.mode": 5,
    "network.dns.disablePrefetch": True,
    "network.prefetch-next": False,
    "network.http.speculative-parallel-limit": 0,
    "network.predictor.enabled": False,
    "browser.region.network.url": "",
    "geo.provider.network.url": "",
    "media.gmp-manager.url": "",
    "media.gmp-gmpopenh264.enabled": False,
    "security.OCSP.enabled": 0,
    "security.remote_settings.crlite_filters.enabled": False,
    "dom.security.https_only_mode": False,
    # Whatever still wants out (remote settings sync at start-up) goes to a proxy that is not
    # there; loopback (the test's origins) always bypasses a proxy.
    "network.proxy.type": 1,
    "network.proxy.http": "127.0.0.1",
    "network.proxy.http_port": 1,
    "network.proxy.ssl": "127.0.0.1",
    "network.proxy.ssl_port": 1,
    "network.proxy.socks_remote_dns": False,
}


def firefox_binary():
    """Debian's firefox-esr, or None."""
    for candidate in (os.environ.get("FIREFOX"), "/usr/bin/firefox-esr", shutil.which("firefox-esr"),
                      shutil.which("firefox")):
        if candidate and os.path.exists(candidate):
            return candidate
    return None


def prefs_js(prefs):
    def value(v):
        if isinstance(v, bool):
            return "true" if v else "false"
        if isinstance(v, int):
            return str(v)
        return '"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return "".join(f'user_pref("{name}", {value(v)});\n' for name, v in prefs.items())


def https_prefs(quic_origin=None):
    """Prefs for the HTTPS runs: HTTP/3 kept on with an imported certificate (Firefox turns it off
    when it finds roots it did not ship), and with `quic_origin` ("host:port") every request to it
    sent over QUIC from the first one (Firefox otherwise starts on TCP and moves to HTTP/3 only
    after an Alt-Svc answer), to 127.0.0.1 (Envoy listens there, not on ::1), with no TCP race."""
    prefs = {"network.http.http3.disable_when_third_party_roots_found": False}
    if quic_origin:
        host, port = quic_origin.rsplit(":", 1)
        prefs.update({
            "network.http.http3.enable": True,
            "network.http.http3.alt-svc-mapping-for-testing": f"{host};h3=:{port}",
            "network.http.http3.force-use-alt-svc-mapping-for-testing": True,
            "network.http.http3.fallback_to_h2_on_error": False,
            "network.http.http3.backup_timer_delay": 8000,
            "network.http.http3.enable_kyber": False,
            "network.dns.disableIPv6": True,
        })
    return prefs


def new_profile(directory, prefs, certificate=None):
    """A profile in `directory`: user.js, and `certificate` (a PEM file) trusted as a peer."""
    os.makedirs(directory, exist_ok=True)
    with open(os.path.join(directory, "user.js"), "w") as f:
        f.write(prefs_js({**PREFS, **prefs}))
    if certificate is not None:
        db = f"sql:{directory}"
        for args in (["-N", "--empty-password"], ["-A", "-n", "cors-test", "-t", "CT,,", "-i", str(certificate)]):
            p = subprocess.run(["certutil", *args, "-d", db], capture_output=True, text=True, timeout=30)
            if p.returncode != 0:
                raise RuntimeError(f"certutil {' '.join(args)} failed: {p.stderr}")


class Collector:
    """A POST target on 127.0.0.1: keeps the first body posted to its `url`."""

    def __init__(self):
        self.bodies = []
        collector = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                length = int(self.headers.get("content-length", "0"))
                collector.bodies.append(self.rfile.read(length).decode("utf-8"))
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/results"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


def with_query(url, **params):
    parts = urllib.parse.urlsplit(url)
    query = parts.query + ("&" if parts.query else "") + urllib.parse.urlencode(params)
    return urllib.parse.urlunsplit(parts._replace(query=query))


def stop(proc):
    """Ends the Firefox this module started: its own process group (start_new_session)."""
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)


def posted_results(url, prefs=None, certificate=None, timeout=90):
    """Loads `url` with `report=` added in a fresh headless Firefox; returns the text the page
    posted (its results JSON). Fails if Firefox exits or nothing arrives within `timeout`."""
    binary = firefox_binary()
    if binary is None:
        raise RuntimeError("firefox-esr not found: scripts/setup.sh installs Debian's firefox-esr")
    profile = tempfile.mkdtemp(prefix="cors-firefox-")
    collector = Collector()
    proc = None
    try:
        new_profile(profile, prefs or {}, certificate)
        log = open(os.path.join(profile, "firefox.log"), "w+")
        proc = subprocess.Popen([binary, "--headless", "--no-remote", "--profile", profile,
                                 with_query(url, report=collector.url)],
                                stdout=log, stderr=subprocess.STDOUT, cwd=profile, start_new_session=True,
                                env={**os.environ, "MOZ_CRASHREPORTER_DISABLE": "1"})
        deadline = time.monotonic() + timeout
        while not collector.bodies and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        if not collector.bodies:
            log.seek(0)
            state = f"exited with {proc.returncode}" if proc.poll() is not None else f"posted nothing in {timeout} s"
            raise RuntimeError(f"firefox {state} ({url}):\n{log.read()[-3000:]}")
        return collector.bodies[0]
    finally:
        if proc is not None:
            stop(proc)
        collector.close()
        shutil.rmtree(profile, ignore_errors=True)


def screenshot(url, path, width, height, prefs=None, certificate=None, timeout=90):
    """Firefox's own `--screenshot`: the page as rendered once it has loaded."""
    binary = firefox_binary()
    if binary is None:
        raise RuntimeError("firefox-esr not found: scripts/setup.sh installs Debian's firefox-esr")
    profile = tempfile.mkdtemp(prefix="cors-firefox-")
    try:
        new_profile(profile, prefs or {}, certificate)
        p = subprocess.run([binary, "--headless", "--no-remote", "--profile", profile, "--screenshot", str(path),
                            f"--window-size={width},{height}", url],
                           capture_output=True, text=True, errors="replace", timeout=timeout, cwd=profile,
                           env={**os.environ, "MOZ_CRASHREPORTER_DISABLE": "1"})
    finally:
        shutil.rmtree(profile, ignore_errors=True)
    if p.returncode != 0 or not os.path.exists(path):
        raise RuntimeError(f"firefox wrote no screenshot to {path} (exit {p.returncode}):\n{p.stderr[-3000:]}")
    return path
