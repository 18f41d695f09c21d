"""The harness the end-to-end tests, `make bench` and `make soak` share: a package apart from the
test modules (tests/test_*.py), imported as `tests.harness.<module>`.

  envoy.py          Envoy configs as Python dicts (listeners, routes, our filter in both builds,
                    Envoy's own CORS filter as `envoy_cors`), start, send, poll, stop
  browser.py        headless Chromium and the demo configuration (browser tests, make screenshot)
  chains.py         filters that sit after ours (jwt_authn, rbac, local_ratelimit) and a test JWT
  fetch_model.py    what a browser concludes from a response (the Fetch standard's CORS checks)
  filter_order.py   Envoy Gateway's HTTP filter order and the filters our manifests place in it
  gateway_api_cors_cases.py   the Gateway API conformance test HTTPRouteCORS, transcribed
  plugin_config.py  the filter's parser through cors-explain --check, and the JSON Schema
"""
