"""What a browser concludes from a CORS response: the Fetch standard's CORS check, CORS-preflight
check and exposed-header rules (https://fetch.spec.whatwg.org/), in plain Python, so that two
servers' answers can be compared by their effect rather than byte for byte.

A response is `(status, [(lower-case name, value)], ...)` as `tests/harness/envoy.py` returns it.
"""

SAFELISTED_METHODS = {"GET", "HEAD", "POST"}
# CORS-safelisted response-header names: always readable by the page once the CORS check passed.
SAFELISTED_RESPONSE_HEADERS = {
    "cache-control", "content-language", "content-length", "content-type", "expires", "last-modified", "pragma",
}
# The response headers a test looks at when it asks "what can the page read?".
OBSERVED_RESPONSE_HEADERS = ("x-upstream", "x-total", "x-secret", "content-type", "content-length")


def values(headers, name):
    return [v for k, v in headers if k == name]


def combined(headers, name):
    """Fetch's "get" a header: every value joined with ", ", or None when absent."""
    found = values(headers, name)
    return ", ".join(found) if found else None


def split_list(value):
    """Fetch's "get, decode, and split" for a list header (no quoted strings in these)."""
    if value is None:
        return None
    return [item.strip(" \t") for item in value.split(",") if item.strip(" \t")]


def cors_check(headers, origin, credentials):
    """The CORS check (Fetch §4.10): True when the page may see the response."""
    acao = combined(headers, "access-control-allow-origin")
    if acao is None:
        return False
    if not credentials and acao == "*":
        return True
    if acao != origin:
        return False
    if not credentials:
        return True
    return combined(headers, "access-control-allow-credentials") == "true"


def exposed_headers(headers, credentials):
    """The observed response headers a page can read after a passed CORS check."""
    expose = split_list(combined(headers, "access-control-expose-headers")) or []
    expose_lower = {e.lower() for e in expose}
    present = {k for k, _ in headers}
    readable = set()
    for name in OBSERVED_RESPONSE_HEADERS:
        if name not in present:
            continue
        if name in SAFELISTED_RESPONSE_HEADERS or name in expose_lower or ("*" in expose and not credentials):
            readable.add(name)
    return frozenset(readable)


def actual_outcome(status, headers, origin, credentials):
    """What the page learns from the response to an actual (non-preflight) CORS request:
    None when the CORS check fails (a network error), else the readable observed headers."""
    if not cors_check(headers, origin, credentials):
        return None
    return ("status", status, "exposed", tuple(sorted(exposed_headers(headers, credentials))))


def preflight_outcome(status, headers, origin, method, request_headers, credentials, private_network):
    """The CORS-preflight fetch (Fetch §4.9) plus Private Network Access: None when the browser
    refuses the actual request, else the max-age it caches the answer for (default 5 s).

    `request_headers` are the header names the browser lists in Access-Control-Request-Headers
    (CORS-unsafe names, lower-case)."""
    if not cors_check(headers, origin, credentials):
        return None
    if not 200 <= status <= 299:
        return None
    if private_network and combined(headers, "access-control-allow-private-network") != "true":
        return None
    methods = split_list(combined(headers, "access-control-allow-methods")) or []
    names = split_list(combined(headers, "access-control-allow-headers")) or []
    if method not in methods and method not in SAFELISTED_METHODS and (credentials or "*" not in methods):
        return None
    names_lower = {n.lower() for n in names}
    for name in request_headers:
        if name == "authorization" and name not in names_lower:
            return None  # a CORS non-wildcard request-header name: `*` never covers it
        if name not in names_lower and (credentials or "*" not in names):
            return None
    max_age = combined(headers, "access-control-max-age")
    try:
        seconds = int(max_age) if max_age is not None else 5
    except ValueError:
        seconds = 5
    return ("max_age", seconds)
