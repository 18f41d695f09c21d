"""The EnvoyProxy we ship (deploy/envoy-gateway/envoyproxy-filter-order.yaml) against Envoy
Gateway's CRD and against Envoy Gateway's filter sorting (modelled in filter_order.py): for
every combination of authentication filters a SecurityPolicy can add, our Wasm filter ends up
before all of them; the same moves listed in the natural order do not."""

import itertools

import pytest

from tests.harness.filter_order import (BASIC_AUTH, CORS, DYNAMIC_MODULES, EG_AUTH_FILTERS, EG_FILTER_NAMES,
                          EG_FIXED_ORDER, EG_NATIVE_ENVOYPROXY, EG_NATURAL_ORDER, EXT_AUTHZ, JWT_AUTHN,
                          OUR_EG_FILTER, OUR_NATIVE_EG_FILTER, RBAC, ROUTER, WASM, eg_envoyproxy,
                          eg_filter_order_cycle, eg_shipped_order, eg_sort)
from tests.test_manifests import DEPLOY, crd_errors, load_crd

CRD = DEPLOY / "crds" / "envoy-gateway-envoyproxy.yaml"
AUTH_AND_CORS = [CORS, *EG_AUTH_FILTERS]
# Filters that are on many gateways anyway and must keep their place.
OTHERS = [EG_FILTER_NAMES[t] for t in ("envoy.filters.http.fault", "envoy.filters.http.ext_proc", RBAC,
                                       "envoy.filters.http.local_ratelimit", ROUTER)]
COMBINATIONS = [c for k in range(len(AUTH_AND_CORS) + 1) for c in itertools.combinations(AUTH_AND_CORS, k)]


def chain_with(present):
    """An Envoy Gateway listener's filter names: ours, the `present` types, the usual others."""
    return [OUR_EG_FILTER, *(EG_FILTER_NAMES[t] for t in present), *OTHERS]


def combo_id(combo):
    return "+".join(t.rsplit(".", 1)[1] for t in combo) or "none"


# ---------------------------------------------------------------- the model against the source

def test_default_order_is_the_one_the_crd_documents():
    """The EnvoyProxy CRD's `filterOrder` description lists the default order; the model sorts a
    chain of one filter per listed type into exactly that order (csrf, newer than that text,
    aside)."""
    crd = load_crd(CRD)
    text = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"][
        "properties"]["filterOrder"]["description"]
    documented = [line[2:].strip() for line in text.splitlines() if line.startswith("- envoy.filters.http.")]
    assert len(documented) == 27 and documented[-1] == ROUTER
    names = [f"{t}/x/0" if t.endswith(("lua", "ext_proc", "wasm", "dynamic_modules")) else t for t in documented]
    assert [n.removesuffix("/x/0") for n in eg_sort(list(reversed(names)))] == documented
    assert set(EG_FIXED_ORDER) - set(documented) == {"envoy.filters.http.csrf"}


def test_default_order_puts_wasm_after_cors_and_authentication():
    """The defect: Envoy Gateway's own order."""
    chain = eg_sort(chain_with(AUTH_AND_CORS))
    assert chain.index(OUR_EG_FILTER) > max(chain.index(EG_FILTER_NAMES[t]) for t in AUTH_AND_CORS)


def test_indexed_filters_sort_by_their_index_and_move_together():
    wasm = [f"{WASM}/envoyextensionpolicy/default/p/wasm/{i}" for i in (2, 0, 1)]
    chain = eg_sort([*wasm, JWT_AUTHN, ROUTER], [{"name": WASM, "before": JWT_AUTHN}])
    assert chain == [*sorted(wasm), JWT_AUTHN, ROUTER]


def test_before_is_the_first_and_after_the_last_of_the_anchor_type():
    a, b = f"{EXT_AUTHZ}/securitypolicy/default/a", f"{EXT_AUTHZ}/securitypolicy/default/b"
    names = [b, ROUTER, JWT_AUTHN, a]
    assert eg_sort(names, [{"name": JWT_AUTHN, "before": EXT_AUTHZ}]) == [JWT_AUTHN, a, b, ROUTER]
    assert eg_sort(names, [{"name": JWT_AUTHN, "after": EXT_AUTHZ}]) == [a, b, JWT_AUTHN, ROUTER]
    assert eg_sort(names, [{"name": EXT_AUTHZ, "after": JWT_AUTHN}]) == [JWT_AUTHN, a, b, ROUTER]


def test_an_entry_whose_filter_or_anchor_is_absent_does_nothing():
    names = [OUR_EG_FILTER, JWT_AUTHN, ROUTER]
    default = eg_sort(names)
    assert eg_sort(names, [{"name": WASM, "before": CORS}]) == default
    assert eg_sort(names, [{"name": CORS, "before": JWT_AUTHN}]) == default


def test_the_documented_example_of_envoy_gateway():
    """site/content/en/latest/tasks/operations/customize-envoyproxy.md: wasm before jwt_authn,
    cors after basic_auth."""
    names = [EG_FILTER_NAMES[t] for t in (CORS, BASIC_AUTH, JWT_AUTHN)] + [OUR_EG_FILTER, ROUTER]
    chain = eg_sort(names, [{"name": WASM, "before": JWT_AUTHN}, {"name": CORS, "after": BASIC_AUTH}])
    assert chain == [EG_FILTER_NAMES[BASIC_AUTH], CORS, OUR_EG_FILTER, JWT_AUTHN, ROUTER]


def test_cycle_check():
    assert eg_filter_order_cycle([{"name": WASM, "before": JWT_AUTHN}, {"name": JWT_AUTHN, "before": WASM}])
    assert eg_filter_order_cycle([{"name": WASM, "before": JWT_AUTHN}, {"name": WASM, "after": JWT_AUTHN}])
    assert eg_filter_order_cycle(EG_NATURAL_ORDER) is None


# ---------------------------------------------------------------- the shipped manifest

def test_manifest_is_accepted_by_the_crd_and_envoy_gateway():
    assert crd_errors(eg_envoyproxy()) == []
    assert eg_filter_order_cycle(eg_shipped_order()) is None
    assert all(entry["name"] == WASM for entry in eg_shipped_order())


@pytest.mark.parametrize("entry, message", [
    ({"name": WASM}, "one of before or after must be specified"),
    ({"name": WASM, "before": JWT_AUTHN, "after": CORS}, "only one of before or after can be specified"),
    ({"name": WASM, "before": "envoy.filters.http.router"}, "before"),
    ({"name": "cors-filter", "before": JWT_AUTHN}, "name"),
])
def test_crd_refuses_a_broken_entry(entry, message):
    doc = eg_envoyproxy()
    doc["spec"]["filterOrder"].append(entry)
    errors = crd_errors(doc)
    assert any(message in e for e in errors), errors


@pytest.mark.parametrize("present", COMBINATIONS, ids=combo_id)
def test_manifest_puts_ours_before_every_auth_filter_present(present):
    default = eg_sort(chain_with(present))
    chain = eg_sort(chain_with(present), eg_shipped_order())
    ours = chain.index(OUR_EG_FILTER)
    for t in present:
        assert ours < chain.index(EG_FILTER_NAMES[t]), (t, chain)
    # Nothing else moved: without ours, the chain is Envoy Gateway's default.
    assert [n for n in chain if n != OUR_EG_FILTER] == [n for n in default if n != OUR_EG_FILTER]
    assert chain[-1] == ROUTER


@pytest.mark.parametrize("present", COMBINATIONS, ids=combo_id)
def test_manifest_moves_every_wasm_filter_of_the_gateway(present):
    """`filterOrder` moves types: a second Wasm filter (another extension) moves too, right
    behind ours (documented in the manifest and docs/deploy.md)."""
    other = f"{WASM}/envoyextensionpolicy/default/other/wasm/0"
    chain = eg_sort([other, *chain_with(present)], eg_shipped_order())
    first_auth = min((chain.index(EG_FILTER_NAMES[t]) for t in present), default=len(chain))
    assert chain.index(OUR_EG_FILTER) < first_auth and chain.index(other) < first_auth


@pytest.mark.parametrize("present", COMBINATIONS, ids=combo_id)
def test_native_manifest_puts_the_module_before_every_auth_filter_present(present):
    """envoyproxy-native.yaml: the same moves for the dynamic module, which Envoy Gateway sorts
    after every Wasm filter by default."""
    native = eg_envoyproxy(EG_NATIVE_ENVOYPROXY)
    assert crd_errors(native) == []
    order = native["spec"]["filterOrder"]
    assert order == [{**entry, "name": DYNAMIC_MODULES} for entry in eg_shipped_order()]
    names = [OUR_NATIVE_EG_FILTER, *chain_with(present)[1:]]
    assert eg_sort(names).index(OUR_NATIVE_EG_FILTER) > max((eg_sort(names).index(EG_FILTER_NAMES[t])
                                                             for t in present), default=-1)
    chain = eg_sort(names, order)
    for t in present:
        assert chain.index(OUR_NATIVE_EG_FILTER) < chain.index(EG_FILTER_NAMES[t]), (t, chain)
    assert chain[-1] == ROUTER


def test_natural_order_fails_when_two_auth_filters_are_present():
    """Each later move puts Wasm right before a filter that comes after an earlier one."""
    failing = []
    for present in COMBINATIONS:
        chain = eg_sort(chain_with(present), EG_NATURAL_ORDER)
        if any(chain.index(OUR_EG_FILTER) > chain.index(EG_FILTER_NAMES[t]) for t in present):
            failing.append(present)
    assert (EG_AUTH_FILTERS[0], JWT_AUTHN) in failing
    # It holds for a single filter, and fails for every pair or more.
    assert all(len(p) >= 2 for p in failing)
    assert len(failing) == sum(1 for p in COMBINATIONS if len(p) >= 2)
