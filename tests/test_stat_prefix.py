"""`stat_prefix` tells two filter instances' counters apart (issue 25.8), in each build.

One Envoy per build runs three listeners with our filter: `public` (stat_prefix "public"),
`partner` (stat_prefix "partner") and `plain` (none). In the Wasm build all three share one VM
(one `vm_id`), where metrics are defined by name: the test shows that distinct prefixes keep
distinct counters there too, and that two listeners without a prefix add into one counter.
Each listener gets its own number of requests; each counter must show exactly its listener's.
"""

import pytest

from tests.harness.envoy import Envoy, catch_all, cors_filter, free_port, listener, poll, preflight, request, with_upstream

POLICY = {"allow_origins": ["https://app.example"], "allow_methods": "PUT"}
# listener: (stat_prefix, allowed preflights sent, allowed actual requests sent)
LISTENERS = {
    "public": ("public", 2, 1),
    "partner": ("partner.eu", 1, 3),
    "plain": (None, 4, 0),
    "plain-too": (None, 1, 2),
}
HOST_PREFIX = {"wasm": "wasmcustom.", "native": "dynamicmodulescustom."}


@pytest.fixture(scope="module")
def counted(build):
    ports = {name: free_port() for name in LISTENERS}
    listeners = []
    for name, (prefix, _, _) in LISTENERS.items():
        config = {"policy": POLICY} if prefix is None else {"policy": POLICY, "stat_prefix": prefix}
        listeners.append(listener(name, ports[name], [cors_filter(build, config)], catch_all(name)))
    e = Envoy(with_upstream(listeners))
    try:
        for name, (_, preflights, actuals) in LISTENERS.items():
            for _ in range(preflights):
                assert preflight(ports[name], "https://app.example")[0] == 200
            for _ in range(actuals):
                assert request(ports[name], "GET", "/", [("origin", "https://app.example")])[0] == 200
        host = HOST_PREFIX[build]
        want = {}
        for prefix, preflights, actuals in LISTENERS.values():
            name = f"{host}{prefix}.cors" if prefix else f"{host}cors"
            for kind, n in (("preflight", preflights), ("actual", actuals)):
                key = f"{name}.{kind}.allowed"
                want[key] = want.get(key, 0) + n
        # The Wasm filter adds its counts on a 1 s timer: until every count is in.
        got = lambda: {k: int(v) for k, v in e.stats("^" + host.replace(".", "\\.")).items()  # noqa: E731
                       if k.endswith(".allowed") and int(v)}
        poll(lambda: got() == want, 10)
        yield want, got()
    finally:
        e.stop()


def test_each_prefix_counts_only_its_listeners_requests(counted):
    want, got = counted
    assert got == want


def test_listeners_without_a_prefix_share_one_counter(counted, build):
    _, got = counted
    plain = LISTENERS["plain"][1] + LISTENERS["plain-too"][1]
    assert got[f"{HOST_PREFIX[build]}cors.preflight.allowed"] == plain
