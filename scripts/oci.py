#!/usr/bin/env python3
"""Builds the filter's OCI image without a Docker daemon, byte for byte reproducibly.

The image is the "compat" variant of the Wasm image specification that Istio's WasmPlugin and
Envoy Gateway's EnvoyExtensionPolicy (`code.type: Image`) pull: an OCI image manifest with
exactly one layer, media type `application/vnd.oci.image.layer.v1.tar+gzip` (both fetchers
take the *last* layer, insist on exactly this media type, gunzip it and look for a tar entry
whose base name is `plugin.wasm`), a `application/vnd.oci.image.config.v1+json` config, and the
manifest annotation `module.wasm.image/variant: compat`.

Writes, from build/cors_filter.wasm by default:
  dist/oci/                      an OCI image layout (oci-layout, index.json, blobs/sha256/...)
  dist/cors-filter.oci.tar       the same layout as an `oci-archive` tarball
  dist/cors-filter.oci.json      digests and sizes (the manifest digest is what the `sha256`
                                 field of a WasmPlugin / EnvoyExtensionPolicy image source wants)

Deterministic: tar entries have fixed mtime (0), uid/gid 0, no user/group names, fixed modes and
a fixed order; gzip has mtime 0, no file name, level 9; JSON is written with sorted keys and no
whitespace. The same .wasm gives the same bytes (given the same zlib; CI pins Debian's).

With --render-deploy, also copies the example manifests of deploy/istio and deploy/envoy-gateway
to OUT/deploy/ with the placeholder sha256 (64 zeros) replaced by the real value: the image
manifest digest for `oci://` / `code.type: Image` sources, the .wasm's sha256 for the HTTP source.
CORS_IMAGE (default ghcr.io/example/cors-filter) and CORS_WASM_URL replace the example locations.

Usage: scripts/oci.py [--wasm PATH] [--out DIR] [--tag TAG] [--render-deploy]
"""

import argparse
import gzip
import hashlib
import io
import json
import os
import re
import shutil
import sys
import tarfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

MANIFEST_MEDIA_TYPE = "application/vnd.oci.image.manifest.v1+json"
CONFIG_MEDIA_TYPE = "application/vnd.oci.image.config.v1+json"
LAYER_MEDIA_TYPE = "application/vnd.oci.image.layer.v1.tar+gzip"
VARIANT_ANNOTATION = "module.wasm.image/variant"
PLUGIN_FILE = "plugin.wasm"
ARCHIVE_NAME = "cors-filter.oci.tar"
SUMMARY_NAME = "cors-filter.oci.json"


def cargo_version():
    text = (ROOT / "Cargo.toml").read_text()
    m = re.search(r'^\[workspace\.package\][^\[]*?^version\s*=\s*"([^"]+)"', text, re.S | re.M)
    if not m:
        raise SystemExit("oci.py: no [workspace.package] version in Cargo.toml")
    return m.group(1)


def canonical_json(obj):
    return json.dumps(obj, sort_keys=True, separators=(",", ":")).encode()


def sha256(data):
    return "sha256:" + hashlib.sha256(data).hexdigest()


def _tarinfo(name, size=0, directory=False):
    info = tarfile.TarInfo(name)
    info.size = size
    info.mtime = 0
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    if directory:
        info.type = tarfile.DIRTYPE
        info.mode = 0o755
    else:
        info.mode = 0o644
    return info


def deterministic_tar(entries):
    """A ustar archive of `entries` [(name, bytes or None for a directory)], in the given order."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        for name, data in entries:
            if data is None:
                tar.addfile(_tarinfo(name, directory=True))
            else:
                tar.addfile(_tarinfo(name, len(data)), io.BytesIO(data))
    return buf.getvalue()


def deterministic_gzip(data):
    buf = io.BytesIO()
    # filename="" and mtime=0 keep the header free of anything that varies between runs.
    with gzip.GzipFile(filename="", mode="wb", fileobj=buf, compresslevel=9, mtime=0) as gz:
        gz.write(data)
    return buf.getvalue()


def build_image(wasm, tag):
    """Returns (blobs {digest: bytes}, index bytes, summary dict)."""
    if wasm[:4] != b"\0asm":
        raise SystemExit("oci.py: input is not a WebAssembly module (no \\0asm magic)")
    layer_tar = deterministic_tar([(PLUGIN_FILE, wasm)])
    layer = deterministic_gzip(layer_tar)
    config = canonical_json({
        "architecture": "wasm",
        "os": "wasip1",
        "config": {},
        "rootfs": {"type": "layers", "diff_ids": [sha256(layer_tar)]},
    })
    manifest = canonical_json({
        "schemaVersion": 2,
        "mediaType": MANIFEST_MEDIA_TYPE,
        "config": {"mediaType": CONFIG_MEDIA_TYPE, "digest": sha256(config), "size": len(config)},
        "layers": [{"mediaType": LAYER_MEDIA_TYPE, "digest": sha256(layer), "size": len(layer)}],
        "annotations": {
            VARIANT_ANNOTATION: "compat",
            "org.opencontainers.image.title": "cors-filter",
            "org.opencontainers.image.version": tag,
        },
    })
    index = canonical_json({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [{
            "mediaType": MANIFEST_MEDIA_TYPE,
            "digest": sha256(manifest),
            "size": len(manifest),
            "annotations": {"org.opencontainers.image.ref.name": tag},
        }],
    })
    blobs = {sha256(b): b for b in (layer, config, manifest)}
    summary = {
        "tag": tag,
        "manifest": {"digest": sha256(manifest), "size": len(manifest)},
        "config": {"digest": sha256(config), "size": len(config)},
        "layer": {"digest": sha256(layer), "size": len(layer), "media_type": LAYER_MEDIA_TYPE,
                  "diff_id": sha256(layer_tar)},
        "wasm": {"sha256": hashlib.sha256(wasm).hexdigest(), "size": len(wasm), "path_in_layer": PLUGIN_FILE},
    }
    return blobs, index, summary


def layout_entries(blobs, index):
    """The files of the OCI image layout, in a fixed order (directories first)."""
    entries = [("blobs/", None), ("blobs/sha256/", None)]
    for digest in sorted(blobs):
        entries.append(("blobs/sha256/" + digest.split(":", 1)[1], blobs[digest]))
    entries.append(("index.json", index))
    entries.append(("oci-layout", canonical_json({"imageLayoutVersion": "1.0.0"})))
    return entries


def write(out, blobs, index, summary):
    layout = out / "oci"
    if layout.exists():
        shutil.rmtree(layout)
    entries = layout_entries(blobs, index)
    for name, data in entries:
        path = layout / name
        if data is None:
            path.mkdir(parents=True, exist_ok=True)
        else:
            path.write_bytes(data)
    (out / ARCHIVE_NAME).write_bytes(deterministic_tar(entries))
    (out / SUMMARY_NAME).write_text(json.dumps(summary, indent=2, sort_keys=True) + "\n")


PLACEHOLDER_SHA256 = "0" * 64
EXAMPLE_IMAGE = "ghcr.io/example/cors-filter"
EXAMPLE_WASM_URL_RE = re.compile(r"https://github\.com/example/cors-filter/releases/download/v[^/]+/cors_filter\.wasm")
# deploy file -> which digest its placeholder stands for
DEPLOY_FILES = {
    "istio/wasmplugin.yaml": "manifest",
    "istio/virtualservice.yaml": None,
    "envoy-gateway/envoyextensionpolicy.yaml": "manifest",
    "envoy-gateway/envoyextensionpolicy-http.yaml": "wasm",
    "envoy-gateway/httproute.yaml": None,
    "envoy-gateway/envoyproxy-filter-order.yaml": None,
    # The native build's pair: nothing to fill in (the module is a file on the proxy).
    "envoy-gateway/envoyproxy-native.yaml": None,
    "envoy-gateway/envoyextensionpolicy-native.yaml": None,
}


def render_deploy(out, summary):
    values = {"manifest": summary["manifest"]["digest"].split(":", 1)[1], "wasm": summary["wasm"]["sha256"]}
    image = os.environ.get("CORS_IMAGE", EXAMPLE_IMAGE)
    wasm_url = os.environ.get("CORS_WASM_URL")
    for rel, kind in DEPLOY_FILES.items():
        text = (ROOT / "deploy" / rel).read_text()
        if kind:
            if text.count(PLACEHOLDER_SHA256) != 1:
                raise SystemExit(f"oci.py: deploy/{rel} must hold the placeholder sha256 exactly once")
            text = text.replace(PLACEHOLDER_SHA256, values[kind])
        text = text.replace(EXAMPLE_IMAGE + ":", image + ":")
        if wasm_url:
            text = EXAMPLE_WASM_URL_RE.sub(wasm_url, text)
        target = out / "deploy" / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--wasm", default=str(ROOT / "build" / "cors_filter.wasm"))
    p.add_argument("--out", default=str(ROOT / "dist"))
    p.add_argument("--tag", default=None, help="ref name in index.json (default: Cargo.toml version)")
    p.add_argument("--render-deploy", action="store_true", help="write OUT/deploy/ with the real digests")
    args = p.parse_args(argv)
    wasm_path = Path(args.wasm)
    if not wasm_path.is_file():
        raise SystemExit(f"oci.py: {wasm_path} not found (run `make build`)")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    blobs, index, summary = build_image(wasm_path.read_bytes(), args.tag or cargo_version())
    write(out, blobs, index, summary)
    if args.render_deploy:
        render_deploy(out, summary)
    print(f"oci.py: {out / ARCHIVE_NAME} ({os.path.getsize(out / ARCHIVE_NAME)} bytes), "
          f"manifest {summary['manifest']['digest']}, layer {summary['layer']['digest']} "
          f"({summary['layer']['size']} bytes), tag {summary['tag']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
