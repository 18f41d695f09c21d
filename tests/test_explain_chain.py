"""`cors-explain` on a filter placed after others, against a real Envoy (issue 25.1).

One Envoy per build (Wasm, native) runs a listener per kind of filter placed before ours:
jwt_authn, basic_auth, api_key_auth and an rbac that denies everyone (which surely answer),
local_ratelimit, ext_authz and ext_proc without a reachable service, ratelimit and a Lua
script that answers (which may answer: cors-explain cannot know), and a header_mutation
(which never answers). Each gets the same requests: an allowed preflight, an allowed actual
request with and without the credentials the filter asks for, a refused origin's actual request
and preflight. cors-explain reads the very Envoy config Envoy runs and predicts each answer:

- where it says a filter before ours answers, the status and CORS headers must be exactly
  what Envoy sent (the Wasm build adds nothing; the native build decorates the reply);
- a filter that answers only requests without credentials: without them, Envoy's answer must be
  the one cors-explain gives for that filter (`before[].status`, `before[].headers`); with
  them, its main prediction;
- a filter that may answer: Envoy's answer must be the main prediction or that filter's reply.

Then `--check` must warn about every filter that can answer a preflight, and about no other.
"""

import base64
import hashlib
import json
import subprocess

import pytest
import yaml

from tests.harness.chains import jwt, jwt_authn, local_ratelimit, rbac_deny_all
from tests.harness.envoy import (Envoy, catch_all, cors_filter, free_port, listener, request, upstream_cluster,
                                 with_upstream)

ALLOWED = "https://app.example"
REFUSED = "https://evil.example"
POLICY = {
    "allow_origins": [ALLOWED],
    "allow_methods": "GET, PUT",
    "allow_headers": "content-type, authorization, x-api-key",
    "expose_headers": "x-total",
    "allow_credentials": True,
    "max_age": 600,
}
COMPARED = ("access-control-", "vary")
USER, PASSWORD, API_KEY = "user", "secret", "key-1"


def typed(name, type_url, **config):
    return {"name": name, "typed_config": {"@type": f"type.googleapis.com/{type_url}", **config}}


def basic_auth():
    sha = base64.b64encode(hashlib.sha1(PASSWORD.encode()).digest()).decode()
    return typed("envoy.filters.http.basic_auth", "envoy.extensions.filters.http.basic_auth.v3.BasicAuth",
                 users={"inline_string": f"{USER}:{{SHA}}{sha}"})


def api_key_auth():
    return typed("envoy.filters.http.api_key_auth", "envoy.extensions.filters.http.api_key_auth.v3.ApiKeyAuth",
                 credentials=[{"key": API_KEY, "client": "c"}], key_sources=[{"header": "x-api-key"}])


def ext_authz():
    return typed("envoy.filters.http.ext_authz", "envoy.extensions.filters.http.ext_authz.v3.ExtAuthz",
                 http_service={"server_uri": {"uri": "http://127.0.0.1", "cluster": "dead", "timeout": "0.5s"}})


def ext_proc():
    return typed("envoy.filters.http.ext_proc", "envoy.extensions.filters.http.ext_proc.v3.ExternalProcessor",
                 grpc_service={"envoy_grpc": {"cluster_name": "dead"}, "timeout": "0.5s"})


def ratelimit():
    return typed("envoy.filters.http.ratelimit", "envoy.extensions.filters.http.ratelimit.v3.RateLimit",
                 domain="d", rate_limit_service={"grpc_service": {"envoy_grpc": {"cluster_name": "dead"}},
                                                 "transport_api_version": "V3"})


def lua_teapot():
    code = 'function envoy_on_request(h) h:respond({[":status"] = "418"}, "teapot") end'
    return typed("envoy.filters.http.lua", "envoy.extensions.filters.http.lua.v3.Lua",
                 default_source_code={"inline_string": code})


def header_mutation():
    return typed("envoy.filters.http.header_mutation",
                 "envoy.extensions.filters.http.header_mutation.v3.HeaderMutation",
                 mutations={"request_mutations": [{"append": {"header": {"key": "x-seen", "value": "1"}}}]})


# listener: (the filter before ours, the credentials it asks for, what cors-explain says of a
# preflight: the `before[].effect` and whether the answer is certain)
CHAINS = {
    "jwt": (jwt_authn, lambda: [("authorization", f"Bearer {jwt()}")], "answers"),
    "basic": (basic_auth, lambda: [("authorization", "Basic " + base64.b64encode(
        f"{USER}:{PASSWORD}".encode()).decode())], "answers"),
    "apikey": (api_key_auth, lambda: [("x-api-key", API_KEY)], "answers"),
    "rbac": (rbac_deny_all, None, "answers"),
    "ratelimit": (local_ratelimit, None, "may_answer"),
    "ext_authz": (ext_authz, None, "may_answer"),
    "ext_proc": (ext_proc, None, "may_answer"),
    "rls": (ratelimit, None, "may_answer"),
    "lua": (lua_teapot, None, "may_answer"),
    "mutation": (header_mutation, None, "passes"),
}

# name: (method, origin, preflight?, with credentials?)
REQUESTS = {
    "allowed-preflight": ("OPTIONS", ALLOWED, True, False),
    "allowed-actual": ("GET", ALLOWED, False, False),
    "allowed-actual-with-credentials": ("GET", ALLOWED, False, True),
    "refused-actual": ("GET", REFUSED, False, False),
    "refused-preflight": ("OPTIONS", REFUSED, True, False),
}


@pytest.fixture(scope="module")
def chain_envoy(build, tmp_path_factory, cors_explain):
    ports = {name: free_port() for name in CHAINS}
    listeners = [listener(name, ports[name], [make(), cors_filter(build, {"policy": POLICY})], catch_all(name))
                 for name, (make, _, _) in CHAINS.items()]
    # `dead`: a port nobody listens on (ext_authz, ext_proc and the rate limit service).
    config = with_upstream(listeners, [upstream_cluster(free_port(), name="dead")])
    path = tmp_path_factory.mktemp(f"chain-{build}") / "envoy.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    e = Envoy(config)
    e.ports, e.yaml, e.explain, e.build = ports, path, cors_explain.binary, build
    yield e
    e.stop()


def explain(e, chain, name):
    method, origin, preflight, _ = REQUESTS[name]
    args = [str(e.explain), str(e.yaml), "--listener", chain, "--json", "--origin", origin,
            "--path", "/api", "--host", "test.local", "--method", method]
    if preflight:
        args += ["--request-method", "PUT", "--request-headers", "content-type"]
    p = subprocess.run(args, capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stderr
    return json.loads(p.stdout)


def send(e, chain, name):
    method, origin, preflight, credentials = REQUESTS[name]
    headers = [("origin", origin)]
    if preflight:
        headers += [("access-control-request-method", "PUT"), ("access-control-request-headers", "content-type")]
    if credentials and CHAINS[chain][1]:
        headers += CHAINS[chain][1]()
    status, response, _ = request(e.ports[chain], method, "/api", headers)
    return status, cors(response)


def cors(headers):
    return sorted((k, v) for k, v in headers if k.startswith(COMPARED))


def answers(ex, credentials):
    """What cors-explain allows Envoy to answer: its prediction, or a reply of a filter before
    ours (each it names may answer; one that wants credentials answers when they are missing)."""
    main = (ex["status"] or 200, cors(ex["headers"]))
    options = [main]
    for b in ex["before"]:
        reply = (b["status"], cors(b["headers"]))
        if b["effect"] == "answers_without_credentials" and not credentials:
            return [reply]
        if b["effect"] == "may_answer":
            options.append(reply)
    return options


@pytest.mark.parametrize("name", REQUESTS)
@pytest.mark.parametrize("chain", CHAINS)
def test_cors_explain_predicts_what_envoy_answers(chain_envoy, chain, name):
    ex = explain(chain_envoy, chain, name)
    status, headers = send(chain_envoy, chain, name)
    credentials = REQUESTS[name][3] and CHAINS[chain][1] is not None
    options = answers(ex, credentials)
    # A filter that may answer with a status cors-explain cannot know (None) matches any status.
    assert any(s in (status, None) and h == headers for s, h in options), (
        f"Envoy answered {status} {headers}; cors-explain allows {options}\n{json.dumps(ex, indent=1)}")


@pytest.mark.parametrize("chain", CHAINS)
def test_each_filter_is_modelled_as_stated(chain_envoy, chain):
    ex = explain(chain_envoy, chain, "allowed-preflight")
    assert [b["effect"] for b in ex["before"]] == [CHAINS[chain][2]]
    if CHAINS[chain][2] == "answers":
        assert ex["decision"] == "answered_by_earlier_filter"
        assert ex["answered_by"] == ex["before"][0]["filter"]
        # The preflight fails in the browser whichever build: a 401/403 is not an ok status.
        assert not ex["browser"]["without_credentials"]["allowed"]
        assert ex["then"] is None


def test_jwt_authn_preflight_is_the_401_envoy_sends(chain_envoy):
    """The issue's case: cors-explain used to say "allowed" where Envoy answers 401."""
    ex = explain(chain_envoy, "jwt", "allowed-preflight")
    status, headers = send(chain_envoy, "jwt", "allowed-preflight")
    assert (ex["status"], status) == (401, 401)
    assert headers == cors(ex["headers"]) == []


def test_native_decorates_an_earlier_filters_reply_and_wasm_does_not(chain_envoy):
    ex = explain(chain_envoy, "rbac", "allowed-actual")
    status, headers = send(chain_envoy, "rbac", "allowed-actual")
    assert status == ex["status"] == 403
    acao = [v for k, v in headers if k == "access-control-allow-origin"]
    assert acao == ([ALLOWED] if chain_envoy.build == "native" else [])


def test_check_warns_about_every_filter_that_can_answer_a_preflight(chain_envoy):
    for chain, (_, _, effect) in CHAINS.items():
        out = check(chain_envoy, chain)
        assert out.returncode == 0, out.stderr
        warned = f'is placed before the CORS filter in listener "{chain}"' in out.stderr
        assert warned == (effect != "passes"), out.stderr


def check(e, chain):
    """`cors-explain --check` on one listener: the Envoy config reduced to it (--check takes only
    the configuration)."""
    config = yaml.safe_load(e.yaml.read_text())
    config["static_resources"]["listeners"] = [
        lst for lst in config["static_resources"]["listeners"] if lst["name"] == chain]
    path = e.yaml.with_name(f"check-{chain}.yaml")
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return subprocess.run([str(e.explain), "--check", str(path)], capture_output=True, text=True, timeout=60)
