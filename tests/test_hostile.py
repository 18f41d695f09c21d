"""Hostile requests through a real Envoy with the filter (issue 6).

A few thousand requests, written byte for byte on raw sockets (http.client cannot send most of
them): non-UTF-8 and control bytes, several Origin headers, empty and 8 KB values,
Access-Control-Request-Headers with hundreds of names and empty items, lower-case methods, and
origin-matching tricks. Three listeners cover a strict credentialed policy (patterns, local 403
refusals, debug reasons), an allow-any policy that mirrors methods and headers, and a loose
credentialed string-matcher policy (echoes whatever it matches).

Asserted for every request: a complete HTTP response (no dropped connection), no 5xx, at most
one Access-Control-Allow-Origin and only a value the policy allows; at the end, no `panicked`
or Wasm runtime error in Envoy's log and a good preflight still answered by the filter. Once per
build of the filter (Wasm, native).
"""

import itertools
import re
import socket

import pytest

from tests.harness.envoy import Envoy, catch_all, cors_filter, free_port, listener, with_upstream

STRICT = {
    "allow_origins": ["https://app.example.com", "https://*.example.com", "http://localhost:8080"],
    "allow_methods": "GET, PUT",
    "allow_headers": "x-a, content-type",
    "expose_headers": "x-total",
    "max_age": 600,
    "allow_credentials": True,
    "forward_not_matching_preflights": False,
    "debug_reason_header": True,
}
ANY = {"allow_origins": ["*"], "allow_methods": "*", "allow_headers": "*", "debug_reason_header": True}
LOOSE = {
    "allow_origin_string_match": [{"prefix": "https://"}, {"safe_regex": {"regex": ".*example.*"}}],
    "allow_credentials": True,
}

STRICT_RE = re.compile(rb"https://app\.example\.com|http://localhost:8080|https://[a-z0-9_-]+(\.[a-z0-9_-]+)*\.example\.com")
LOOSE_RE = re.compile(rb"https://.*|.*example.*", re.S)
VISIBLE = re.compile(rb"[\x21-\x7e]+")

# What each listener may answer in Access-Control-Allow-Origin, given the Origin bytes sent
# (for a repeated header: the values Envoy joins with ",").
def allowed_strict(origin, acao):
    return acao == origin and STRICT_RE.fullmatch(origin) is not None


def allowed_any(origin, acao):
    return acao == b"*"


def allowed_loose(origin, acao):
    return acao == origin and VISIBLE.fullmatch(origin) is not None and LOOSE_RE.fullmatch(origin) is not None


ORIGIN_TRICKS = [
    b"https://app.example.com",
    b"https://a.b.example.com",
    b"https://app.example.com.evil.net",
    b"https://evilexample.com",
    b"https://evil.net#.example.com",
    b"https://evil.net?.example.com",
    b"https://evil.net/.example.com",
    b"https://app.example.com@evil.net",
    b"https://user:pw@app.example.com",
    b"https://user@a.example.com",
    b"https://app.example.com.",
    b"https://app.example.com/",
    b"https://app.example.com:443",
    b"https://app.example.com:8443",
    b"http://app.example.com",
    b"wss://app.example.com",
    b"HTTPS://APP.EXAMPLE.COM",
    b"https://App.example.com",
    b"https://.example.com",
    b"https://a..example.com",
    b"https://example.com",
    b"http://localhost:8080",
    b"http://localhost:80800",
    b"http://localhost",
    b"null",
    b"NULL",
    b"null ",
    b"https://xn--80ak6aa92e.example.com",
    b"https://xn--80ak6aa92e.com",
    "https://пример.example.com".encode(),
    b"https://app.example.com\xff",
    b"https://\xc3\xa9.example.com",
    b"https://app.example.com\x01",
    b"https://app.example.com\x7f",
    b"https://app.example.com\tx",
    b"https://app .example.com",
    b"",
    b" ",
    b"*",
    b"https://*.example.com",
    b"https://app.example.com" + b"a" * 8000,
    b"https://" + b"a." * 3000 + b"example.com",
    b"\x00",
    b"https://app.example.com\x00evil",
    b"https://app.example.com\r\nx-injected: 1",
]
METHODS = [b"GET", b"get", b"OPTIONS", b"options", b"Options", b"PUT", b"DELETE", b"PROPFIND"]
REQUEST_METHODS = [None, b"PUT", b"put", b"", b"GET, PUT", b"\xff", b"DELETE", b"X" * 8000]
REQUEST_HEADERS = [
    None,
    b"",
    b"x-a",
    b"X-A, Content-Type",
    b",,, ,x-a,,",
    b"authorization",
    b"x-a, \xff\xfe, x-b",
    b", ".join(b"x-h%d" % i for i in range(300)),
    b",".join([b""] * 500),
    b"x-a" + b" " * 4000 + b", x-b",
]
PATHS = [b"/", b"/cors-upstream/x"]


def raw_request(method, path, headers):
    lines = [method + b" " + path + b" HTTP/1.1", b"host: test.local"]
    lines += [name + b": " + value for name, value in headers]
    return b"\r\n".join(lines) + b"\r\n\r\n"


class Conn:
    """A keep-alive HTTP/1.1 connection read by content-length; reconnects after a close."""

    def __init__(self, port):
        self.port = port
        self.sock = None
        self.buf = b""

    def _connect(self):
        self.sock = socket.create_connection(("127.0.0.1", self.port), timeout=10)
        self.buf = b""

    def close(self):
        if self.sock:
            self.sock.close()
        self.sock = None

    def _read_until(self, marker):
        while marker not in self.buf:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError("connection closed before a complete response")
            self.buf += chunk

    def _read_exact(self, n):
        while len(self.buf) < n:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError("connection closed in the middle of a body")
            self.buf += chunk
        data, self.buf = self.buf[:n], self.buf[n:]
        return data

    def send(self, data):
        """Returns (status, [(name, value)]); raises ConnectionError when no complete answer."""
        if self.sock is None:
            self._connect()
        self.sock.sendall(data)
        self._read_until(b"\r\n\r\n")
        head, self.buf = self.buf.split(b"\r\n\r\n", 1)
        status_line, *header_lines = head.split(b"\r\n")
        status = int(status_line.split(b" ")[1])
        headers = []
        for line in header_lines:
            name, _, value = line.partition(b":")
            headers.append((name.strip().lower(), value.strip()))
        length = int(dict(headers).get(b"content-length", b"0"))
        self._read_exact(length)
        if dict(headers).get(b"connection", b"").lower() == b"close" or status == 400:
            self.close()
        return status, headers


LISTENERS = {"strict": (STRICT, allowed_strict), "any": (ANY, allowed_any), "loose": (LOOSE, allowed_loose)}


@pytest.fixture(scope="module")
def envoy(build):
    ports = {name: free_port() for name in LISTENERS}
    e = Envoy(with_upstream([listener(name, ports[name], [cors_filter(build, {"policy": policy}, "json")], catch_all(name))
                             for name, (policy, _) in LISTENERS.items()]))
    e.ports = ports
    yield e
    e.stop()


def cases():
    """(method, path, headers) triples: every origin trick crossed with methods and preflight
    headers, plus repeated-Origin and header-stuffing requests."""
    out = []
    for origin, method in itertools.product(ORIGIN_TRICKS, METHODS):
        out.append((method, b"/", [(b"origin", origin)]))
    for origin, arm, arh in itertools.product(ORIGIN_TRICKS[:30], REQUEST_METHODS, REQUEST_HEADERS):
        headers = [(b"origin", origin)]
        if arm is not None:
            headers.append((b"access-control-request-method", arm))
        if arh is not None:
            headers.append((b"access-control-request-headers", arh))
        out.append((b"OPTIONS", PATHS[len(out) % 2], headers))
    for a, b in itertools.product(ORIGIN_TRICKS[:12], repeat=2):
        out.append((b"GET", b"/cors-upstream/y", [(b"origin", a), (b"Origin", b)]))
        out.append((b"OPTIONS", b"/", [(b"origin", a), (b"access-control-request-method", b"PUT"), (b"ORIGIN", b)]))
    for origin in ORIGIN_TRICKS[:10]:
        out.append((b"OPTIONS", b"/", [(b"origin", origin), (b"access-control-request-method", b"PUT"),
                                      (b"access-control-request-method", b"DELETE"),
                                      (b"access-control-request-private-network", b"true"),
                                      (b"access-control-request-headers", b"x-a"),
                                      (b"access-control-request-headers", b"authorization")]))
        out.append((b"GET", b"/", [(b"origin", origin)] + [(b"x-filler-%d" % i, b"v" * 100) for i in range(100)]))
    return out


def expected_origin_value(headers):
    """The Origin value the filter sees: Envoy joins repeated values with ","."""
    # A CR LF inside a value written on the wire ends that header line (the rest is another header).
    values = [v.split(b"\r\n")[0].strip(b" \t") for n, v in headers if n.lower() == b"origin"]
    return b",".join(values)


@pytest.mark.parametrize("name", list(LISTENERS))
def test_hostile_requests_never_break_the_filter_or_trick_it(envoy, name):
    _, allowed = LISTENERS[name]
    conn = Conn(envoy.ports[name])
    sent = statuses_4xx = allowed_answers = 0
    failures = []
    for method, path, headers in cases():
        sent += 1
        try:
            status, resp = conn.send(raw_request(method, path, headers))
        except (ConnectionError, OSError) as e:
            failures.append(f"{method!r} {headers!r:.200}: {e}")
            conn.close()
            continue
        if status >= 500:
            failures.append(f"{status} for {method!r} {headers!r:.200}")
        statuses_4xx += 400 <= status < 500
        acao = [v for n, v in resp if n == b"access-control-allow-origin"]
        if len(acao) > 1:
            failures.append(f"several ACAO {acao!r:.200}")
        if acao:
            allowed_answers += 1
            if not allowed(expected_origin_value(headers), acao[0]):
                failures.append(f"ACAO {acao[0]!r:.200} for {headers!r:.300}")
            if acao[0] == b"*":
                assert (b"access-control-allow-credentials", b"true") not in resp
    conn.close()
    assert not failures, f"{len(failures)} failures of {sent}:\n" + "\n".join(failures[:20])
    # The run must have exercised both sides: some answers allowed, some refused.
    assert allowed_answers > 50 and sent - allowed_answers > 50, (allowed_answers, sent)
    assert sent >= 1000
    print(f"{name}: {sent} hostile requests, {allowed_answers} with ACAO, {statuses_4xx} 4xx")

    # The filter is still alive: a good preflight is answered by it.
    good = raw_request(b"OPTIONS", b"/", [(b"origin", b"https://app.example.com"),
                                          (b"access-control-request-method", b"PUT")])
    status, resp = Conn(envoy.ports[name]).send(good)
    assert status == 200
    assert dict(resp).get(b"access-control-allow-origin") in (b"https://app.example.com", b"*")
    log = envoy.log()
    assert "panicked" not in log and "RuntimeError" not in log and "Wasm VM failed" not in log


@pytest.mark.parametrize("name", ["strict", "any"])
@pytest.mark.parametrize("what, request_headers", [
    ("17 empty elements", [b"x-a" + b"," * 17]),
    # Envoy joins repeated field lines with "," (and drops empty ones) before the filter sees
    # them: lines of empty elements count as elements.
    ("17 field lines of empty elements", [b"x-a"] + [b" , "] * 16),
    ("129 names", [b",".join(b"x-%d" % i for i in range(129))]),
    ("8193 bytes", [b"x-" + b"a" * 8191]),
])
def test_a_preflight_past_the_request_headers_limits_gets_no_cors_headers(envoy, name, what, request_headers):
    # An allowed origin, so only the limits refuse it; Envoy joins repeated field lines with ",".
    headers = [(b"origin", b"https://app.example.com"), (b"access-control-request-method", b"PUT")]
    headers += [(b"access-control-request-headers", v) for v in request_headers]
    status, resp = Conn(envoy.ports[name]).send(raw_request(b"OPTIONS", b"/", headers))
    assert status == 403, what
    assert not [n for n, _ in resp if n.startswith(b"access-control-")], resp
    assert b"past the filter's limits" in dict(resp)[b"x-cors-reason"]


@pytest.mark.parametrize("name", ["strict", "any"])
def test_a_browser_like_preflight_at_the_limits_is_answered(envoy, name):
    headers = [(b"origin", b"https://app.example.com"), (b"access-control-request-method", b"PUT"),
               (b"access-control-request-headers", b"x-a" + b"," * 16)]
    status, resp = Conn(envoy.ports[name]).send(raw_request(b"OPTIONS", b"/", headers))
    assert status == 200
    assert dict(resp)[b"access-control-allow-origin"] in (b"https://app.example.com", b"*")
