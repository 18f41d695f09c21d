#!/usr/bin/env bash
# Release artefacts, from the modules `make build` wrote (build/cors_filter.wasm,
# build/libcors.so), into dist/ (or $DIST_DIR):
#   cors_filter.wasm, cors_filter.wasm.sha256   the Wasm module and its checksum (`sha256sum -c`)
#   libcors.so, libcors.so.sha256               the native module (Envoy 1.40/1.41, x86_64 Linux) and its checksum
#   cors-filter.oci.tar                         the Wasm OCI image as an oci-archive (scripts/oci.py)
#   oci/                                        the same image as an OCI image layout
#   cors-filter.oci.json                        its digests; manifest.digest goes in `sha256:`
#   cors-filter-native.oci.tar, oci-native/, cors-filter-native.oci.json
#                                               the same three for the native image (only libcors.so,
#                                               for a Kubernetes image volume)
#   plugin-config.schema.json                   JSON Schema of the plugin configuration
#   cors-explain, cors-explain.sha256           the cors-explain CLI (x86_64 Linux) and its checksum
#   VERSION                                     the release's version (Cargo.toml's workspace version,
#                                               also in the images' annotations and `cors-explain --version`)
#   LICENSE, CHANGELOG.md                       the license (Apache-2.0) and the changes per version
#   deploy/                                     the example manifests with the real sha256 values
#   SHA256SUMS                                  checksums of the files above
# Deterministic: the same modules give the same bytes.
set -euo pipefail
cd "$(dirname "$0")/.."
DIST=${DIST_DIR:-dist}
PY=${PYTHON:-.venv/bin/python}
WASM=build/cors_filter.wasm
NATIVE=build/libcors.so
EXPLAIN=target/release/cors-explain
for module in "$WASM" "$NATIVE" "$EXPLAIN"; do
  [ -f "$module" ] || { echo "dist.sh: $module missing: run \`make build\`" >&2; exit 1; }
done
# One version for every artefact: the CLI must have been built from this Cargo.toml.
VERSION=$("$PY" -c 'from scripts.oci import cargo_version; print(cargo_version())')
if [ "$("$EXPLAIN" --version)" != "cors-explain $VERSION" ]; then
  echo "dist.sh: $EXPLAIN is not version $VERSION: run \`make build\`" >&2; exit 1
fi

rm -rf "$DIST"
mkdir -p "$DIST"
cp "$WASM" "$DIST/cors_filter.wasm"
cp "$NATIVE" "$DIST/libcors.so"
cp "$EXPLAIN" "$DIST/cors-explain"
cp schema/plugin-config.schema.json "$DIST/plugin-config.schema.json"
cp LICENSE CHANGELOG.md "$DIST/"
echo "$VERSION" > "$DIST/VERSION"
(cd "$DIST" && for f in cors_filter.wasm libcors.so cors-explain; do sha256sum "$f" > "$f.sha256"; done)
"$PY" scripts/oci.py --wasm "$DIST/cors_filter.wasm" --native "$DIST/libcors.so" --out "$DIST" --render-deploy
(cd "$DIST" && sha256sum cors_filter.wasm libcors.so cors-explain cors-filter.oci.tar cors-filter.oci.json \
  cors-filter-native.oci.tar cors-filter-native.oci.json plugin-config.schema.json VERSION LICENSE CHANGELOG.md \
  > SHA256SUMS)
echo "dist.sh: $DIST/: $(cd "$DIST" && ls | tr '\n' ' ')"
