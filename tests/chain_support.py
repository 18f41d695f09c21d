"""The old import path of tests/harness/chains.py, kept while test modules owned by other work
still import `tests.chain_support`; import `tests.harness.chains` instead. Removed once none does."""

from tests.harness.chains import *  # noqa: F401,F403
