"""The release artefacts (scripts/dist.sh, scripts/oci.py): the modules and their checksums, the
Wasm OCI image in the form Istio and Envoy Gateway pull (checked with skopeo, and by unpacking it
the way their fetchers do), the native image for a Kubernetes image volume (checked with skopeo,
unpacked by buildah as a container runtime does, and the module in it loaded by Envoy 1.40 from
the path the EnvoyProxy names), the JSON Schema, and the example manifests with their real
digests. Also the Dockerfile docs/deploy.md offers instead: built here by buildah (a Dockerfile
builder without a daemon; there is no Docker here), it must give the fetchers the same module."""

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

from scripts.oci import KINDS, NATIVE, PLACEHOLDER_SHA256, WASM, cargo_version
from tests.harness.envoy import (ROOT, bootstrap, free_port, listener, native_filter, route, upstream_cluster,
                                 validate)
from tests.test_manifests import DEPLOY, crd_errors, manifest_files

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


def buildah(store):
    """buildah's command line with a store of its own under `store` (vfs: no overlay mounts)."""
    return ["buildah", "--root", str(store / "store"), "--runroot", str(store / "run"), "--storage-driver", "vfs"]


@pytest.fixture(scope="module")
def dist(tmp_path_factory):
    """A fresh dist/ made by scripts/dist.sh in a temporary directory."""
    out = tmp_path_factory.mktemp("dist") / "dist"
    run("scripts/dist.sh", env={**os.environ, "DIST_DIR": str(out), "PYTHON": PY})
    return out


@pytest.fixture(scope="module")
def summary(dist):
    return json.loads((dist / WASM.summary_name).read_text())


@pytest.fixture(scope="module")
def native_summary(dist):
    return json.loads((dist / NATIVE.summary_name).read_text())


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
    assert {"cors_filter.wasm", "cors_filter.wasm.sha256", "cors-filter.oci.tar", "cors-filter.oci.json", "oci",
            "libcors.so", "libcors.so.sha256", "cors-filter-native.oci.tar", "cors-filter-native.oci.json",
            "oci-native", "plugin-config.schema.json", "SHA256SUMS", "deploy", "cors-explain",
            "cors-explain.sha256", "VERSION", "LICENSE", "CHANGELOG.md"} == names
    assert (dist / "libcors.so").read_bytes() == (ROOT / "build" / "libcors.so").read_bytes()
    assert (dist / "plugin-config.schema.json").read_bytes() == (ROOT / "schema/plugin-config.schema.json").read_bytes()


def test_checksum_files_verify(dist):
    for name, magic in (("cors_filter.wasm", b"\0asm"), ("libcors.so", b"\x7fELF"), ("cors-explain", b"\x7fELF")):
        module = (dist / name).read_bytes()
        assert module[:4] == magic
        assert (dist / f"{name}.sha256").read_text() == f"{sha256_hex(module)}  {name}\n"
        run("sha256sum", "-c", f"{name}.sha256", cwd=str(dist))
    out = run("sha256sum", "-c", "SHA256SUMS", cwd=str(dist))
    assert sorted(line.rsplit(": ", 1)[0] for line in out.splitlines()) == sorted(
        ["cors_filter.wasm", "libcors.so", "cors-explain", "plugin-config.schema.json", "VERSION", "LICENSE",
         "CHANGELOG.md"] + [n for kind in KINDS for n in (kind.archive_name, kind.summary_name)])
    assert out.count(": OK") == 11


def test_one_version_is_stamped_into_every_artefact(dist, summary, native_summary):
    """Cargo.toml's version: dist/VERSION, the shipped CLI, both images, and a CHANGELOG entry."""
    version = cargo_version()
    assert (dist / "VERSION").read_text() == version + "\n"
    assert run(str(dist / "cors-explain"), "--version") == f"cors-explain {version}\n"
    for kind in KINDS:
        index = json.loads((dist / kind.layout_dir / "index.json").read_text())
        assert [m["annotations"]["org.opencontainers.image.ref.name"] for m in index["manifests"]] == [version]
    assert f"## [{version}]" in (dist / "CHANGELOG.md").read_text()
    assert "Apache License" in (dist / "LICENSE").read_text()


def test_the_shipped_cli_checks_the_shipped_manifests(dist):
    out = run(str(dist / "cors-explain"), "--check", str(dist / "deploy" / "istio" / "wasmplugin.yaml"))
    assert out.endswith(": valid\n")


def skopeo_sees_one_layer_with_the_right_media_types(dist, kind, summary):
    """What both images share, as skopeo reads the archive: one OCI tar+gzip layer, the digests
    of scripts/oci.py's summary, and the same image in the OCI layout under the crate version.
    Returns (manifest, config)."""
    archive = f"oci-archive:{dist / kind.archive_name}"
    raw = skopeo("inspect", "--raw", archive)
    manifest = json.loads(raw)
    assert manifest["schemaVersion"] == 2 and manifest["mediaType"] == OCI_MANIFEST
    assert manifest["config"]["mediaType"] == OCI_CONFIG
    assert [l["mediaType"] for l in manifest["layers"]] == [OCI_LAYER_GZIP]
    info = json.loads(skopeo("inspect", archive))
    digest = "sha256:" + sha256_hex(raw.encode())
    assert info["Digest"] == digest == summary["manifest"]["digest"]
    assert info["Layers"] == [summary["layer"]["digest"]] == [manifest["layers"][0]["digest"]]
    config = skopeo("inspect", "--config", "--raw", archive)
    assert "sha256:" + sha256_hex(config.encode()) == manifest["config"]["digest"]
    assert json.loads(config)["rootfs"]["diff_ids"] == [summary["layer"]["diff_id"]]
    layout = json.loads(skopeo("inspect", f"oci:{dist / kind.layout_dir}:{summary['tag']}"))
    assert layout["Digest"] == digest
    return manifest, json.loads(config)


def test_skopeo_sees_one_compat_layer_with_the_right_media_types(dist, summary):
    manifest, _ = skopeo_sees_one_layer_with_the_right_media_types(dist, WASM, summary)
    assert manifest["annotations"]["module.wasm.image/variant"] == "compat"


def test_skopeo_sees_the_native_image_for_linux_amd64(dist, native_summary):
    """A container runtime pulls an image volume for the node's platform: the module is an
    x86_64 Linux library, and the image says so."""
    manifest, config = skopeo_sees_one_layer_with_the_right_media_types(dist, NATIVE, native_summary)
    assert (config["os"], config["architecture"]) == ("linux", "amd64")
    assert "module.wasm.image/variant" not in manifest["annotations"]
    assert manifest["annotations"]["org.opencontainers.image.title"] == NATIVE.title


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


@pytest.fixture(scope="module")
def native_rootfs(dist, tmp_path_factory):
    """The native image's file system as a container runtime lays it out (buildah, a
    containers/storage client like CRI-O, pulls the archive, checks its layer digests and
    diff_ids, and mounts the image's root): the directory an image volume shows at its
    mountPath."""
    store = tmp_path_factory.mktemp("buildah")
    cmd = buildah(store)
    container = run(*cmd, "from", "--quiet", f"oci-archive:{dist / NATIVE.archive_name}").strip()
    try:
        yield Path(run(*cmd, "mount", container).strip())
    finally:
        subprocess.run([*cmd, "umount", container], capture_output=True)
        subprocess.run([*cmd, "rm", container], capture_output=True)


def test_the_native_image_holds_only_the_module(dist, native_rootfs):
    assert sorted(str(p.relative_to(native_rootfs)) for p in native_rootfs.rglob("*")) == [NATIVE.path_in_layer]
    assert (native_rootfs / NATIVE.path_in_layer).read_bytes() == (dist / "libcors.so").read_bytes()


def test_envoy_1_40_loads_the_module_from_the_image_at_the_path_the_envoyproxy_names(dist, native_rootfs):
    """The rendered EnvoyProxy's module path, with its image volume's mountPath replaced by where
    the image is mounted here, given to Envoy the way Envoy Gateway translates
    `dynamicModules[].source.local.path` (DynamicModuleConfig `module.local.filename`)."""
    (proxy,) = yaml.safe_load_all((dist / "deploy" / "envoy-gateway" / "envoyproxy-native.yaml").read_text())
    (mount,) = proxy["spec"]["provider"]["kubernetes"]["envoyDeployment"]["container"]["volumeMounts"]
    (module,) = proxy["spec"]["dynamicModules"]
    path = module["source"]["local"]["path"]
    assert path.startswith(mount["mountPath"] + "/")
    filename = native_rootfs / path[len(mount["mountPath"]) + 1:]
    cors = native_filter({"policy": {"allow_origins": ["https://app.example.com"]}})
    cors["typed_config"]["dynamic_module_config"] = {"module": {"local": {"filename": str(filename)}}}
    vhost = {"name": "vh", "domains": ["*"], "routes": [route("r")]}
    code, out = validate(bootstrap([listener("check", free_port(), [cors], [vhost])],
                                   [upstream_cluster(free_port())], free_port()))
    assert code == 0, out[-3000:]
    assert "Dynamic module ABI version v0.2.0 matched." in out, out[-3000:]


@pytest.mark.parametrize("kind", KINDS, ids=lambda k: k.name)
def test_same_module_gives_the_same_bytes(dist, tmp_path, kind):
    def build(out, **modules):
        inputs = {k.name: str(dist / m) for k, m in ((WASM, "cors_filter.wasm"), (NATIVE, "libcors.so"))}
        inputs.update(modules)
        run(PY, "scripts/oci.py", "--wasm", inputs["wasm"], "--native", inputs["native"], "--out", str(out))
        return out
    a, b = build(tmp_path / "a"), build(tmp_path / "b")
    assert (a / kind.archive_name).read_bytes() == (b / kind.archive_name).read_bytes()
    assert (a / kind.archive_name).read_bytes() == (dist / kind.archive_name).read_bytes()
    files = sorted(p.relative_to(a) for p in (a / kind.layout_dir).rglob("*") if p.is_file())
    assert len(files) == 5  # 3 blobs, index.json, oci-layout
    for rel in files:
        assert (a / rel).read_bytes() == (b / rel).read_bytes(), rel
    # A different module gives a different image. A byte appended keeps a valid magic and header.
    source = dist / ("cors_filter.wasm" if kind is WASM else "libcors.so")
    other = tmp_path / source.name
    other.write_bytes(source.read_bytes() + b"\0")
    c = build(tmp_path / "c", **{kind.name: str(other)})
    assert (c / kind.archive_name).read_bytes() != (a / kind.archive_name).read_bytes()


@pytest.mark.parametrize("option, message, the_other_module", [
    ("--wasm", "not a WebAssembly module", "libcors.so"),
    ("--native", "not an x86_64 ELF shared library", "cors_filter.wasm"),
])
def test_oci_py_refuses_a_file_that_is_not_the_module(tmp_path, option, message, the_other_module):
    bad = tmp_path / "bad"
    # Neither module, or the other build's module: refused.
    for content in (b"not a module", (ROOT / "build" / the_other_module).read_bytes()):
        bad.write_bytes(content)
        p = subprocess.run([PY, "scripts/oci.py", option, str(bad), "--out", str(tmp_path / "o")],
                           capture_output=True, text=True, cwd=str(ROOT))
        assert p.returncode != 0 and message in p.stderr, p.stderr


def image_volume_references(envoyproxy):
    return [v["image"]["reference"] for v in envoyproxy["spec"]["provider"]["kubernetes"]["envoyDeployment"]
            .get("pod", {}).get("volumes", []) if "image" in v]


def test_rendered_manifests_carry_the_real_digests_and_stay_valid(dist, summary, native_summary):
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
            elif doc["kind"] == "EnvoyProxy" and "dynamicModules" in doc["spec"]:
                assert image_volume_references(doc) == [
                    f"{NATIVE.example_image}:{native_summary['tag']}@{native_summary['manifest']['digest']}"]
                seen.append("native")
            else:
                continue
            assert crd_errors(doc) == [], path
    assert sorted(seen) == ["HTTP", "Image", "istio", "native"]


def test_no_placeholder_is_left_in_the_rendered_manifests(dist):
    for path in (dist / "deploy").rglob("*.yaml"):
        assert PLACEHOLDER_SHA256 not in path.read_text(), path


def test_the_image_repositories_are_set_by_cors_image_and_cors_native_image(dist, tmp_path):
    env = {**os.environ, "CORS_IMAGE": "registry.acme.test/cors", "CORS_NATIVE_IMAGE": "registry.acme.test/cors-so"}
    run(PY, "scripts/oci.py", "--wasm", str(dist / "cors_filter.wasm"), "--native", str(dist / "libcors.so"),
        "--out", str(tmp_path), "--render-deploy", env=env)
    rendered = tmp_path / "deploy" / "envoy-gateway"
    (wasm_policy,) = yaml.safe_load_all((rendered / "envoyextensionpolicy.yaml").read_text())
    assert wasm_policy["spec"]["wasm"][0]["code"]["image"]["url"].startswith("registry.acme.test/cors:")
    (proxy,) = yaml.safe_load_all((rendered / "envoyproxy-native.yaml").read_text())
    (reference,) = image_volume_references(proxy)
    assert reference.startswith("registry.acme.test/cors-so:") and "@sha256:" in reference


def test_every_example_manifest_is_rendered(dist):
    rendered = {p.relative_to(dist / "deploy") for p in (dist / "deploy").rglob("*.yaml")}
    assert rendered == {p.relative_to(DEPLOY) for p in manifest_files()}


def test_dockerfile_builds_an_image_the_fetchers_read_as_the_same_module(dist, tmp_path):
    """`docker build` of the Dockerfile (buildah's, in Docker's image format, in a store of its
    own) gives one layer whose only file is plugin.wasm: the same entry, mode and bytes as the
    layer scripts/oci.py writes, which is what Istio's and Envoy Gateway's fetchers take from
    either image (both layer media types are in the compat variant). The tar headers' times, and
    so the digests, differ, as docs/deploy.md says."""
    run(*buildah(tmp_path), "build", "--quiet", "--isolation", "chroot", "--format", "docker", "-f", "Dockerfile",
        "-t", "localhost/cors-filter:dockerfile", ".")
    run(*buildah(tmp_path), "push", "--quiet", "localhost/cors-filter:dockerfile", f"dir:{tmp_path / 'dockerfile'}")
    skopeo("copy", f"oci-archive:{dist / 'cors-filter.oci.tar'}", f"dir:{tmp_path / 'oci'}")
    built = json.loads((tmp_path / "dockerfile" / "manifest.json").read_text())
    assert len(built["layers"]) == 1, built
    from_dockerfile = fetched_layer(tmp_path / "dockerfile", (DOCKER_LAYER_GZIP,))
    from_oci_py = fetched_layer(tmp_path / "oci")
    def entries(layer):  # Go's tar writer also keeps the file type bits in the mode field
        return [(m.name, m.isfile(), stat.S_IMODE(m.mode), content) for m, content in layer]
    assert entries(from_dockerfile) == entries(from_oci_py)
    assert from_dockerfile[0][1] == (ROOT / "build" / "cors_filter.wasm").read_bytes()
