"""The old import path of tests/harness/plugin_config.py, kept while test modules owned by other work
still import `tests.plugin_config`; import `tests.harness.plugin_config` instead. Removed once none does."""

from tests.harness.plugin_config import *  # noqa: F401,F403
