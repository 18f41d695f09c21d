"""The release artefacts (scripts/dist.sh, scripts/oci.py): the module and its checksum, the OCI
image in the form Istio and Envoy Gateway pull (checked with skopeo, and by unpacking it the way
their fetchers do), the JSON Schema, and the example manifests with their real digests. Also the
Dockerfile docs/deploy.md offers instead: built here by buildah (a Dockerfile builder without a
daemon; there is no Docker here), it must give the fetchers the same module."""

import gzip
import hashlib
import io
import json
import os
import stat
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest
import yaml

from tests.test_manifests import DEPLOY, crd_errors, manifest_files

ROOT = Path(__file__).resolve().parent.parent
PY = sys.executable
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"
DOCKER_LAYER_GZIP = "application/vnd.docker.image.rootfs.diff.tar.gzip"


def run(*args, **kw):
    kw.setdefault("cwd", str(ROOT))
    p = subprocess.run(args, capture_output=True, text=True, timeout=300, **kw)
    assert p.returncode == 0, f"{args}: exit {p.returncode}\n{p.stdout}\n{p.stderr}"
    return p.stdout


def skopeo(*args):
    return run("skopeo", "--insecure-policy", *args)


@pytest.fixture(scope="module")
def dist(tmp_path_factory):
    """A fresh dist/ made by scripts/dist.sh in a temporary directory."""
    out = tmp_path_factory.mktemp("dist") / "dist"
    run("scripts/dist.sh", env={**os.environ, "DIST_DIR": str(out), "PYTHON": PY})
    return out


@pytest.fixture(scope="module")
def summary(dist):
    return json.loads((dist / "cors-filter.oci.json").read_text())


def sha256_hex(data):
    return hashlib.sha256(data).hexdigest()


def fetched_layer(image_dir, layer_media_types=(OCI_LAYER_GZIP,)):
    """What Istio's / Envoy Gateway's fetcher reads from an image copied to a `dir:` layout: the
    last layer, of a media type it accepts, gunzipped: [(tar entry, its bytes)]."""
    manifest = json.loads((image_dir / "manifest.json").read_bytes())
    layer = manifest["layers"][-1]
    assert layer["mediaType"] in layer_media_types, layer
    blob = (image_dir / layer["digest"].split(":", 1)[1]).read_bytes()
    assert "sha256:" + sha256_hex(blob) == layer["digest"] and len(blob) == layer["size"]
    with tarfile.open(fileobj=io.BytesIO(gzip.decompress(blob))) as tar:
        return [(m, tar.extractfile(m).read()) for m in tar.getmembers()]


def test_dist_holds_the_release_files(dist):
    names = {p.name for p in dist.iterdir()}
    assert {"cors_filter.wasm", "cors_filter.wasm.sha256", "cors-filter.oci.tar", "cors-filter.oci.json",
            "plugin-config.schema.json", "SHA256SUMS", "oci", "deploy"} == names
    assert (dist / "plugin-config.schema.json").read_bytes() == (ROOT / "schema/plugin-config.schema.json").read_bytes()


def test_checksum_files_verify(dist):
    wasm = (dist / "cors_filter.wasm").read_bytes()
    assert wasm[:4] == b"\0asm"
    assert (dist / "cors_filter.wasm.sha256").read_text() == f"{sha256_hex(wasm)}  cors_filter.wasm\n"
    run("sha256sum", "-c", "cors_filter.wasm.sha256", cwd=str(dist))
    out = run("sha256sum", "-c", "SHA256SUMS", cwd=str(dist))
    assert out.count(": OK") == 4


def test_skopeo_sees_one_compat_layer_with_the_right_media_types(dist, summary):
    archive = f"oci-archive:{dist / 'cors-filter.oci.tar'}"
    raw = skopeo("inspect", "--raw", archive)
    manifest = json.loads(raw)
    assert manifest["schemaVersion"] == 2 and manifest["mediaType"] == OCI_MANIFEST
    assert manifest["config"]["mediaType"] == OCI_CONFIG
    assert [l["mediaType"] for l in manifest["layers"]] == [OCI_LAYER_GZIP]
    assert manifest["annotations"]["module.wasm.image/variant"] == "compat"
    info = json.loads(skopeo("inspect", archive))
    digest = "sha256:" + sha256_hex(raw.encode())
    assert info["Digest"] == digest == summary["manifest"]["digest"]
    assert info["Layers"] == [summary["layer"]["digest"]] == [manifest["layers"][0]["digest"]]
    config = skopeo("inspect", "--config", "--raw", archive)
    assert "sha256:" + sha256_hex(config.encode()) == manifest["config"]["digest"]
    assert json.loads(config)["rootfs"]["diff_ids"] == [summary["layer"]["diff_id"]]
    # The image layout in dist/oci/ is the same image, under the crate version as its tag.
    layout = json.loads(skopeo("inspect", f"oci:{dist / 'oci'}:{summary['tag']}"))
    assert layout["Digest"] == digest


def test_copied_image_unpacks_to_the_module_as_istio_and_envoy_gateway_read_it(dist, summary, tmp_path):
    """skopeo copy to a directory, then what Istio's / Envoy Gateway's fetcher does: take the last
    layer, require the OCI tar+gzip media type, gunzip, find the entry named plugin.wasm."""
    target = tmp_path / "copied"
    skopeo("copy", f"oci-archive:{dist / 'cors-filter.oci.tar'}", f"dir:{target}")
    manifest_bytes = (target / "manifest.json").read_bytes()
    assert "sha256:" + sha256_hex(manifest_bytes) == summary["manifest"]["digest"], "copy changed the digest"
    (entry, content), = fetched_layer(target)
    assert entry.name == "plugin.wasm"
    assert (entry.mtime, entry.uid, entry.gid, entry.uname, entry.gname, entry.mode) == (0, 0, 0, "", "", 0o644)
    assert content == (dist / "cors_filter.wasm").read_bytes()


def test_same_module_gives_the_same_bytes(dist, tmp_path):
    for run_dir in ("a", "b"):
        run(PY, "scripts/oci.py", "--wasm", str(dist / "cors_filter.wasm"), "--out", str(tmp_path / run_dir))
    a, b = tmp_path / "a", tmp_path / "b"
    assert (a / "cors-filter.oci.tar").read_bytes() == (b / "cors-filter.oci.tar").read_bytes()
    assert (a / "cors-filter.oci.tar").read_bytes() == (dist / "cors-filter.oci.tar").read_bytes()
    files = sorted(p.relative_to(a) for p in (a / "oci").rglob("*") if p.is_file())
    assert len(files) == 5  # 3 blobs, index.json, oci-layout
    for rel in files:
        assert (a / rel).read_bytes() == (b / rel).read_bytes(), rel
    # A different module gives a different image.
    other = tmp_path / "other.wasm"
    other.write_bytes((dist / "cors_filter.wasm").read_bytes() + b"\0")
    run(PY, "scripts/oci.py", "--wasm", str(other), "--out", str(tmp_path / "c"))
    assert (tmp_path / "c" / "cors-filter.oci.tar").read_bytes() != (a / "cors-filter.oci.tar").read_bytes()


def test_oci_py_refuses_a_file_that_is_not_wasm(tmp_path):
    bad = tmp_path / "bad.wasm"
    bad.write_bytes(b"not wasm")
    p = subprocess.run([PY, "scripts/oci.py", "--wasm", str(bad), "--out", str(tmp_path / "o")],
                       capture_output=True, text=True, cwd=str(ROOT))
    assert p.returncode != 0 and "not a WebAssembly module" in p.stderr


def test_rendered_manifests_carry_the_real_digests_and_stay_valid(dist, summary):
    manifest_hex = summary["manifest"]["digest"].split(":", 1)[1]
    seen = []
    for path in sorted((dist / "deploy").rglob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text()):
            if doc["kind"] == "WasmPlugin":
                assert doc["spec"]["sha256"] == manifest_hex
                seen.append("istio")
            elif doc["kind"] == "EnvoyExtensionPolicy" and "wasm" in doc["spec"]:
                code = doc["spec"]["wasm"][0]["code"]
                if code["type"] == "Image":
                    assert code["image"]["sha256"] == manifest_hex
                else:
                    assert code["http"]["sha256"] == summary["wasm"]["sha256"]
                seen.append(code["type"])
            else:
                continue
            assert crd_errors(doc) == [], path
    assert sorted(seen) == ["HTTP", "Image", "istio"]


def test_every_example_manifest_is_rendered(dist):
    rendered = {p.relative_to(dist / "deploy") for p in (dist / "deploy").rglob("*.yaml")}
    assert rendered == {p.relative_to(DEPLOY) for p in manifest_files()}


def test_dockerfile_builds_an_image_the_fetchers_read_as_the_same_module(dist, tmp_path):
    """`docker build` of the Dockerfile (buildah's, in Docker's image format, in a store of its
    own) gives one layer whose only file is plugin.wasm: the same entry, mode and bytes as the
    layer scripts/oci.py writes, which is what Istio's and Envoy Gateway's fetchers take from
    either image (both layer media types are in the compat variant). The tar headers' times, and
    so the digests, differ, as docs/deploy.md says."""
    buildah = ["buildah", "--root", str(tmp_path / "store"), "--runroot", str(tmp_path / "run"),
               "--storage-driver", "vfs"]
    run(*buildah, "build", "--quiet", "--isolation", "chroot", "--format", "docker", "-f", "Dockerfile",
        "-t", "localhost/cors-filter:dockerfile", ".")
    run(*buildah, "push", "--quiet", "localhost/cors-filter:dockerfile", f"dir:{tmp_path / 'dockerfile'}")
    skopeo("copy", f"oci-archive:{dist / 'cors-filter.oci.tar'}", f"dir:{tmp_path / 'oci'}")
    built = json.loads((tmp_path / "dockerfile" / "manifest.json").read_text())
    assert len(built["layers"]) == 1, built
    from_dockerfile = fetched_layer(tmp_path / "dockerfile", (DOCKER_LAYER_GZIP,))
    from_oci_py = fetched_layer(tmp_path / "oci")
    def entries(layer):  # Go's tar writer also keeps the file type bits in the mode field
        return [(m.name, m.isfile(), stat.S_IMODE(m.mode), content) for m, content in layer]
    assert entries(from_dockerfile) == entries(from_oci_py)
    assert from_dockerfile[0][1] == (ROOT / "build" / "cors_filter.wasm").read_bytes()
