#!/usr/bin/env python3
"""Builds the filter's two OCI images without a Docker daemon, byte for byte reproducibly.

The Wasm image (from build/cors_filter.wasm) is the "compat" variant of the Wasm image
specification that Istio's WasmPlugin and Envoy Gateway's EnvoyExtensionPolicy (`code.type:
Image`) pull: an OCI image manifest with exactly one layer, media type
`application/vnd.oci.image.layer.v1.tar+gzip` (both fetchers take the *last* layer, insist on
exactly this media type, gunzip it and look for a tar entry whose base name is `plugin.wasm`), a
`application/vnd.oci.image.config.v1+json` config, and the manifest annotation
`module.wasm.image/variant: compat`.

The native image (from build/libcors.so) holds only the dynamic module, as `libcors.so` at the
root of its one layer, for a Kubernetes image volume (pod `volumes[].image`): the kubelet's
container runtime pulls it as an ordinary image, so its config names the platform the module is
built for (linux/amd64; a runtime refuses an image for another platform), and mounts its files
at the volume mount's path. The EnvoyProxy of deploy/envoy-gateway/envoyproxy-native.yaml loads
it from there.

Writes, for each image, into dist/ by default:
  oci/, oci-native/                          an OCI image layout (oci-layout, index.json, blobs/sha256/...)
  cors-filter.oci.tar, cors-filter-native.oci.tar
                                             the same layout as an `oci-archive` tarball
  cors-filter.oci.json, cors-filter-native.oci.json
                                             digests and sizes (the manifest digest is what the
                                             `sha256` of a WasmPlugin / EnvoyExtensionPolicy image
                                             source wants, and what an image volume pins with `@sha256:`)

Deterministic: tar entries have fixed mtime (0), uid/gid 0, no user/group names, fixed modes and
a fixed order; gzip has mtime 0, no file name, level 9; JSON is written with sorted keys and no
whitespace. The same module gives the same bytes (given the same zlib; CI pins Debian's).

With --render-deploy, also copies the example manifests of deploy/istio and deploy/envoy-gateway
to OUT/deploy/ with the placeholder sha256 (64 zeros) replaced by the real value: the Wasm image's
manifest digest for `oci://` / `code.type: Image` sources, the .wasm's sha256 for the HTTP source,
the native image's manifest digest for the image volume. CORS_IMAGE (default
ghcr.io/example/cors-filter), CORS_NATIVE_IMAGE (default ghcr.io/example/cors-filter-native) and
CORS_WASM_URL replace the example locations.

Usage: scripts/oci.py [--wasm PATH] [--native PATH] [--out DIR] [--tag TAG] [--render-deploy]
"""

import argparse
import gzip
import hashlib
import io
import json
import os
import re
import shutil
import struct
import sys
import tarfile
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

MANIFEST_MEDIA_TYPE = "application/vnd.oci.image.manifest.v1+json"
CONFIG_MEDIA_TYPE = "application/vnd.oci.image.config.v1+json"
LAYER_MEDIA_TYPE = "application/vnd.oci.image.layer.v1.tar+gzip"
VARIANT_ANNOTATION = "module.wasm.image/variant"


def check_wasm(data):
    if data[:4] != b"\0asm":
        raise SystemExit("oci.py: input is not a WebAssembly module (no \\0asm magic)")


def check_native(data):
    # ELF header: 64-bit (EI_CLASS 2), little-endian (EI_DATA 1), a shared object (e_type 3,
    # ET_DYN) for x86-64 (e_machine 62): what the image's platform, linux/amd64, promises.
    if len(data) < 20 or data[:4] != b"\x7fELF" or data[4:6] != b"\x02\x01" \
            or struct.unpack_from("<HH", data, 16) != (3, 62):
        raise SystemExit("oci.py: input is not an x86_64 ELF shared library")


@dataclass(frozen=True)
class ImageKind:
    """What differs between the two images; everything else (layer, config, manifest, layout,
    archive, rendering) is the same code."""
    name: str               # the summary's key for the module, and the --option of its input
    title: str              # org.opencontainers.image.title, and the stem of the output files
    layout_dir: str
    path_in_layer: str
    platform: dict          # the config's architecture / os
    check: object           # refuses a file that is not this kind of module
    image_env: str          # the variable that replaces example_image in the rendered manifests
    annotations: dict = field(default_factory=dict)

    @property
    def example_image(self):
        return "ghcr.io/example/" + self.title

    @property
    def archive_name(self):
        return self.title + ".oci.tar"

    @property
    def summary_name(self):
        return self.title + ".oci.json"


WASM = ImageKind(name="wasm", title="cors-filter", layout_dir="oci", path_in_layer="plugin.wasm",
                 platform={"architecture": "wasm", "os": "wasip1"},
                 annotations={VARIANT_ANNOTATION: "compat"}, check=check_wasm, image_env="CORS_IMAGE")
NATIVE = ImageKind(name="native", title="cors-filter-native", layout_dir="oci-native", path_in_layer="libcors.so",
                   platform={"architecture": "amd64", "os": "linux"}, check=check_native,
                   image_env="CORS_NATIVE_IMAGE")
KINDS = (WASM, NATIVE)

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
        # Also for libcors.so: dlopen needs read access only (an execute bit would not help on
        # a noexec mount either).
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


def build_image(module, tag, kind):
    """The image of `kind` holding `module`: (blobs {digest: bytes}, index bytes, summary dict)."""
    kind.check(module)
    layer_tar = deterministic_tar([(kind.path_in_layer, module)])
    layer = deterministic_gzip(layer_tar)
    config = canonical_json({
        **kind.platform,
        "config": {},
        "rootfs": {"type": "layers", "diff_ids": [sha256(layer_tar)]},
    })
    manifest = canonical_json({
        "schemaVersion": 2,
        "mediaType": MANIFEST_MEDIA_TYPE,
        "config": {"mediaType": CONFIG_MEDIA_TYPE, "digest": sha256(config), "size": len(config)},
        "layers": [{"mediaType": LAYER_MEDIA_TYPE, "digest": sha256(layer), "size": len(layer)}],
        "annotations": {
            **kind.annotations,
            "org.opencontainers.image.title": kind.title,
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
        kind.name: {"sha256": hashlib.sha256(module).hexdigest(), "size": len(module),
                    "path_in_layer": kind.path_in_layer},
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


def write(out, blobs, index, summary, kind):
    layout = out / kind.layout_dir
    if layout.exists():
        shutil.rmtree(layout)
    entries = layout_entries(blobs, index)
    for name, data in entries:
        path = layout / name
        if data is None:
            path.mkdir(parents=True, exist_ok=True)
        else:
            path.write_bytes(data)
    (out / kind.archive_name).write_bytes(deterministic_tar(entries))
    (out / kind.summary_name).write_text(json.dumps(summary, indent=2, sort_keys=True) + "\n")


PLACEHOLDER_SHA256 = "0" * 64
EXAMPLE_WASM_URL_RE = re.compile(r"https://github\.com/example/cors-filter/releases/download/v[^/]+/cors_filter\.wasm")
# deploy file -> which digest its placeholder stands for (see render_deploy)
DEPLOY_FILES = {
    "istio/wasmplugin.yaml": "wasm_manifest",
    "istio/virtualservice.yaml": None,
    "envoy-gateway/envoyextensionpolicy.yaml": "wasm_manifest",
    "envoy-gateway/envoyextensionpolicy-http.yaml": "wasm",
    "envoy-gateway/httproute.yaml": None,
    "envoy-gateway/envoyproxy-filter-order.yaml": None,
    # The native build's pair: the EnvoyProxy mounts the native image by digest; the policy
    # only names the module.
    "envoy-gateway/envoyproxy-native.yaml": "native_manifest",
    "envoy-gateway/envoyextensionpolicy-native.yaml": None,
}


def render_deploy(out, summaries):
    """OUT/deploy/: the manifests with the real digests and the configured image locations.
    `summaries`: {kind name: that image's summary}."""
    values = {"wasm": summaries["wasm"]["wasm"]["sha256"]}
    for kind in KINDS:
        values[f"{kind.name}_manifest"] = summaries[kind.name]["manifest"]["digest"].split(":", 1)[1]
    wasm_url = os.environ.get("CORS_WASM_URL")
    for rel, placeholder_for in DEPLOY_FILES.items():
        text = (ROOT / "deploy" / rel).read_text()
        if placeholder_for:
            if text.count(PLACEHOLDER_SHA256) != 1:
                raise SystemExit(f"oci.py: deploy/{rel} must hold the placeholder sha256 exactly once")
            text = text.replace(PLACEHOLDER_SHA256, values[placeholder_for])
        for kind in KINDS:
            # The ":" keeps cors-filter from matching the start of cors-filter-native.
            text = text.replace(kind.example_image + ":", os.environ.get(kind.image_env, kind.example_image) + ":")
        if wasm_url:
            text = EXAMPLE_WASM_URL_RE.sub(wasm_url, text)
        target = out / "deploy" / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--wasm", default=str(ROOT / "build" / "cors_filter.wasm"), help="the Wasm image's module")
    p.add_argument("--native", default=str(ROOT / "build" / "libcors.so"), help="the native image's module")
    p.add_argument("--out", default=str(ROOT / "dist"))
    p.add_argument("--tag", default=None, help="ref name in index.json (default: Cargo.toml version)")
    p.add_argument("--render-deploy", action="store_true", help="write OUT/deploy/ with the real digests")
    args = p.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    tag = args.tag or cargo_version()
    summaries = {}
    for kind in KINDS:
        module_path = Path(getattr(args, kind.name))
        if not module_path.is_file():
            raise SystemExit(f"oci.py: {module_path} not found (run `make build`)")
        blobs, index, summary = build_image(module_path.read_bytes(), tag, kind)
        write(out, blobs, index, summary, kind)
        summaries[kind.name] = summary
        print(f"oci.py: {out / kind.archive_name} ({os.path.getsize(out / kind.archive_name)} bytes), "
              f"manifest {summary['manifest']['digest']}, layer {summary['layer']['digest']} "
              f"({summary['layer']['size']} bytes), tag {summary['tag']}")
    if args.render_deploy:
        render_deploy(out, summaries)
    return 0


if __name__ == "__main__":
    sys.exit(main())
