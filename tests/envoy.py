"""The old import path of tests/harness/envoy.py, kept while test modules owned by other work
still import `tests.envoy`; import `tests.harness.envoy` instead. Removed once none does."""

from tests.harness.envoy import *  # noqa: F401,F403
