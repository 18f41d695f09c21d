#!/usr/bin/env bash
# Release artefacts, from the module `make build` wrote (build/cors_filter.wasm), into dist/
# (or $DIST_DIR):
#   cors_filter.wasm, cors_filter.wasm.sha256   the module and its checksum (`sha256sum -c`)
#   cors-filter.oci.tar                         the OCI image as an oci-archive (scripts/oci.py)
#   oci/                                        the same image as an OCI image layout
#   cors-filter.oci.json                        its digests; manifest.digest goes in `sha256:`
#   plugin-config.schema.json                   JSON Schema of the plugin configuration
#   deploy/                                     the example manifests with the real sha256 values
#   SHA256SUMS                                  checksums of the files above
# Deterministic: the same module gives the same bytes.
set -euo pipefail
cd "$(dirname "$0")/.."
DIST=${DIST_DIR:-dist}
PY=${PYTHON:-.venv/bin/python}
WASM=build/cors_filter.wasm
[ -f "$WASM" ] || { echo "dist.sh: $WASM missing: run \`make build\`" >&2; exit 1; }

rm -rf "$DIST"
mkdir -p "$DIST"
cp "$WASM" "$DIST/cors_filter.wasm"
cp schema/plugin-config.schema.json "$DIST/plugin-config.schema.json"
(cd "$DIST" && sha256sum cors_filter.wasm > cors_filter.wasm.sha256)
"$PY" scripts/oci.py --wasm "$DIST/cors_filter.wasm" --out "$DIST" --render-deploy
(cd "$DIST" && sha256sum cors_filter.wasm cors-filter.oci.tar cors-filter.oci.json plugin-config.schema.json > SHA256SUMS)
echo "dist.sh: $DIST/: $(cd "$DIST" && ls | tr '\n' ' ')"
