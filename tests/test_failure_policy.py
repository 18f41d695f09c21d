"""What Envoy does when the filter's VM traps, per `failure_policy` (issue 6).

The product never traps on purpose, so the test makes a trapping build *outside* the product:
it disassembles build/cors_filter.wasm with binaryen (wasm-dis), points the
`proxy_on_request_headers` export at a small wrapper that executes `unreachable` when a request
has 30 or more headers and otherwise calls the real handler, and reassembles it (wasm-as).
Everything else is the real filter. Observed on Envoy 1.40:

- default (FAIL_CLOSED): the trapping request gets 503, and so does every later request through
  that VM, until Envoy restarts;
- FAIL_RELOAD: the trapping request gets 503; after the reload backoff (1 s by default) a new VM
  answers again with CORS, and the `vm_reload_success` counter counts it;
- FAIL_OPEN: the trapping request gets 503; later requests bypass the filter: a preflight goes
  to the upstream unanswered and no response carries CORS headers (browsers then refuse
  cross-origin reads: CORS fails closed from the browser's side, but the API loses CORS).

A configuration the filter refuses never loads, whatever the failure_policy.
"""

import re
import shutil
import subprocess
import time

import pytest

from tests.harness.envoy import (WASM, Envoy, catch_all, free_port, header_values, listener, poll, preflight, request,
                         validate, wasm_filter, with_upstream)

POLICY = {"policy": {"allow_origins": ["https://app.example.com"], "allow_methods": "GET, PUT"}}
TRAP = [("origin", "https://app.example.com")] + [(f"x-h{i}", "v") for i in range(30)]
FEATURES = ["--enable-bulk-memory", "--enable-sign-ext", "--enable-mutable-globals",
            "--enable-nontrapping-float-to-int"]


def tool(name):
    path = shutil.which(name)
    if not path:
        raise RuntimeError(f"{name} (binaryen) not found: run `make setup`")
    return path


@pytest.fixture(scope="module")
def trapping_wasm(tmp_path_factory):
    d = tmp_path_factory.mktemp("trap")
    wat = subprocess.run([tool("wasm-dis"), str(WASM)], capture_output=True, text=True, check=True).stdout
    export = re.search(r'\(export "proxy_on_request_headers" \(func (\$[\w$]+)\)\)', wat)
    assert export, "proxy_on_request_headers export not found"
    wat = wat.replace(export.group(0), '(export "proxy_on_request_headers" (func $trap_on_many_headers))')
    wrapper = f""" (func $trap_on_many_headers (param $0 i32) (param $1 i32) (param $2 i32) (result i32)
  (if (i32.ge_u (local.get $1) (i32.const 30)) (then (unreachable)))
  (call {export.group(1)} (local.get $0) (local.get $1) (local.get $2))
 )
"""
    end = wat.rstrip().rfind(")")
    (d / "trap.wat").write_text(wat[:end] + wrapper + wat[end:])
    subprocess.run([tool("wasm-as"), *FEATURES, str(d / "trap.wat"), "-o", str(d / "trap.wasm")], check=True)
    return d / "trap.wasm"


def filter_for(name, wasm, failure_policy):
    f = wasm_filter(POLICY, "json", name=name, failure_policy=failure_policy)
    vm = f["typed_config"]["config"]["vm_config"]
    vm["vm_id"] = name  # one VM per listener: a trap in one must not touch the others
    vm["code"]["local"]["filename"] = str(wasm)
    return f


@pytest.fixture(scope="module")
def envoy(trapping_wasm):
    setups = {
        "closed": (trapping_wasm, None),  # the default is FAIL_CLOSED
        "reload": (trapping_wasm, "FAIL_RELOAD"),
        "open": (trapping_wasm, "FAIL_OPEN"),
        "product": (WASM, None),
    }
    ports = {name: free_port() for name in setups}
    listeners = [listener(name, ports[name], [filter_for(name, wasm, fp)], catch_all(name))
                 for name, (wasm, fp) in setups.items()]
    e = Envoy(with_upstream(listeners))
    e.ports = ports
    yield e
    e.stop()


def answer(port):
    """A preflight from the allowed origin: (status, its ACAO values, its x-upstream values)."""
    status, headers, _ = preflight(port, "https://app.example.com", "PUT")
    return status, header_values(headers, "access-control-allow-origin"), header_values(headers, "x-upstream")


def first_answer_but_503(port):
    """Asks every 50 ms for up to 5 s: the first answer that is not a 503, or None."""
    return poll(lambda: (a := answer(port))[0] != 503 and a, 5)


def trap(envoy, name):
    """Makes the VM behind listener `name` trap; returns when Envoy has logged the trap."""
    assert answer(envoy.ports[name]) == (200, ["https://app.example.com"], [])
    traps = lambda: envoy.log().count("Uncaught RuntimeError: unreachable")  # noqa: E731
    before = traps()
    status, _, _ = request(envoy.ports[name], "GET", "/", TRAP)
    assert status == 503
    assert poll(lambda: traps() > before, 3), "the trap is not in Envoy's log"  # flushed every 100 ms


def test_the_product_itself_does_not_trap_on_the_trigger(envoy):
    status, headers, _ = request(envoy.ports["product"], "GET", "/", TRAP)
    assert status == 200 and header_values(headers, "access-control-allow-origin") == ["https://app.example.com"]


def test_default_fail_closed_answers_503_to_everything_after_a_trap(envoy):
    trap(envoy, "closed")
    port = envoy.ports["closed"]
    # Asked again and again for longer than FAIL_RELOAD's backoff (1 s): nothing comes back.
    answers = []
    deadline = time.monotonic() + 1.5
    while time.monotonic() < deadline:
        answers += [answer(port)[0], request(port, "GET", "/", [("origin", "https://app.example.com")])[0],
                    request(port, "GET", "/")[0]]  # even requests without Origin
    assert len(answers) >= 9 and set(answers) == {503}, answers


def test_fail_reload_brings_a_new_vm_after_the_backoff(envoy):
    trap(envoy, "reload")
    assert first_answer_but_503(envoy.ports["reload"]) == (200, ["https://app.example.com"], [])
    stats = envoy.stats("reload")
    assert int(stats.get("wasm.reload.vm_reload_success", 0)) >= 1, stats
    # The reloaded VM traps again on the same request, and recovers again.
    trap(envoy, "reload")


def test_fail_open_bypasses_the_filter_after_a_trap(envoy):
    trap(envoy, "open")
    # The preflight reached the upstream.
    assert first_answer_but_503(envoy.ports["open"]) == (200, [], ["hit"])
    status, headers, _ = request(envoy.ports["open"], "GET", "/", [("origin", "https://app.example.com")])
    assert status == 200 and header_values(headers, "access-control-allow-origin") == []


@pytest.mark.parametrize("failure_policy", [None, "FAIL_RELOAD", "FAIL_OPEN"])
def test_a_refused_configuration_never_loads_whatever_the_failure_policy(failure_policy):
    bad = {"policy": {"allow_origins": ["*"], "allow_credentials": True}}
    config = with_upstream([listener("bad", free_port(), [wasm_filter(bad, "json", failure_policy=failure_policy)],
                                     catch_all("bad"))])
    code, output = validate(config)
    assert code != 0
    assert "invalid plugin configuration: policy.allow_credentials: true together with an allow-any origin" in output
    assert "Unable to create Wasm plugin" in output
