"""What differs between the Envoy versions of tests/compat_versions.py (1.36 to 1.40), checked on
each installed binary with `envoy --mode validate` (a second or two each): where the native build
refuses to load and how Envoy says so, and how a Wasm plugin configuration arrives (an inline Struct
as protobuf wire bytes, numbers as doubles; a StringValue as its raw text). The suites themselves
run per version in `make compat` (scripts/compat.py); docs/compatibility.md has the results."""

import re
import struct
import subprocess

import pytest

from tests.compat_versions import OTHER_VERSIONS, VERSIONS
from tests.harness.envoy import ROOT, catch_all, free_port, listener, native_filter, validate, wasm_filter, \
    with_upstream

CONFIG = {"policy": {"allow_origins": ["https://app.example"]}}


def one_filter_config(cors_filter):
    return with_upstream([listener("compat", free_port(), [cors_filter], catch_all("compat"))])


def test_setup_installs_every_other_version():
    setup = (ROOT / "scripts" / "setup.sh").read_text()
    loop = re.search(r"^for other in ([^;]+); do$", setup, re.M)
    assert loop, "scripts/setup.sh has no `for other in …; do` loop installing .envoy/<version>/"
    assert loop.group(1).split() == OTHER_VERSIONS


@pytest.mark.parametrize("version", [v for v in VERSIONS if v.native_refusal], ids=lambda v: v.version)
def test_the_native_build_refuses_to_load(version):
    code, out = validate(one_filter_config(native_filter(CONFIG)), version.version)
    assert code != 0, f"the native build loaded on Envoy {version.version}"
    assert version.native_refusal in out, out[-3000:]


@pytest.mark.parametrize("version", [v for v in VERSIONS if not v.native_refusal], ids=lambda v: v.version)
def test_the_native_build_loads(version):
    code, out = validate(one_filter_config(native_filter(CONFIG)), version.version)
    assert code == 0, out[-3000:]


# A proxy-wasm module that only logs "config:" and the hex of its plugin configuration (up to 64
# bytes) in on_configure, so that the test sees the bytes Envoy hands over. binaryen's wasm-as
# (installed by scripts/setup.sh) assembles it.
PROBE_WAT = """
(module
  (import "env" "proxy_get_buffer_bytes" (func $get_buffer (param i32 i32 i32 i32 i32) (result i32)))
  (import "env" "proxy_log" (func $log (param i32 i32 i32) (result i32)))
  (memory (export "memory") 2)
  (global $heap (mut i32) (i32.const 4096))
  (func (export "proxy_abi_version_0_2_1"))
  (func (export "proxy_on_memory_allocate") (param $n i32) (result i32)
    (local $p i32)
    (local.set $p (global.get $heap))
    (global.set $heap (i32.add (global.get $heap) (local.get $n)))
    (local.get $p))
  (func (export "proxy_on_context_create") (param i32 i32))
  (func (export "proxy_on_vm_start") (param i32 i32) (result i32) (i32.const 1))
  (func (export "proxy_on_configure") (param $ctx i32) (param $size i32) (result i32)
    (local $src i32) (local $n i32) (local $i i32) (local $b i32) (local $out i32)
    ;; buffer type 7: the plugin configuration; its address and size land at 16 and 20
    (drop (call $get_buffer (i32.const 7) (i32.const 0) (i32.const 64) (i32.const 16) (i32.const 20)))
    (local.set $src (i32.load (i32.const 16)))
    (local.set $n (i32.load (i32.const 20)))
    (local.set $out (i32.add (i32.const 100) (i32.const 7)))
    (block $done (loop $next
      (br_if $done (i32.ge_u (local.get $i) (local.get $n)))
      (local.set $b (i32.load8_u (i32.add (local.get $src) (local.get $i))))
      (i32.store8 (local.get $out) (i32.load8_u (i32.shr_u (local.get $b) (i32.const 4))))
      (i32.store8 (i32.add (local.get $out) (i32.const 1)) (i32.load8_u (i32.and (local.get $b) (i32.const 15))))
      (local.set $out (i32.add (local.get $out) (i32.const 2)))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br $next)))
    (drop (call $log (i32.const 2) (i32.const 100) (i32.sub (local.get $out) (i32.const 100))))
    (i32.const 1))
  (data (i32.const 0) "0123456789abcdef")
  (data (i32.const 100) "config:"))
"""


@pytest.fixture(scope="module")
def probe(tmp_path_factory):
    d = tmp_path_factory.mktemp("probe")
    (d / "probe.wat").write_text(PROBE_WAT)
    subprocess.run(["wasm-as", str(d / "probe.wat"), "-o", str(d / "probe.wasm")], check=True, timeout=30)
    return d / "probe.wasm"


def configuration_bytes(probe, configuration, encoding, version):
    config = one_filter_config(wasm_filter(configuration, encoding, wasm=probe, vm_id="probe"))
    code, out = validate(config, version)
    assert code == 0, out[-3000:]
    logged = re.search(r"config:([0-9a-f]*)", out)
    assert logged, out[-3000:]
    return bytes.fromhex(logged.group(1))


def struct_with_one_number(key, number):
    """The protobuf wire bytes of Struct{fields: {key: Value{number_value: number}}}: field 1 (a
    map entry: key = 1, value = 2), Value's number_value = field 2, a little-endian double."""
    value = b"\x11" + struct.pack("<d", number)
    entry = b"\x0a" + bytes([len(key)]) + key.encode() + b"\x12" + bytes([len(value)]) + value
    return b"\x0a" + bytes([len(entry)]) + entry


@pytest.mark.parametrize("version", [v.version for v in VERSIONS])
def test_an_inline_struct_reaches_the_wasm_filter_as_protobuf_bytes_with_numbers_as_doubles(probe, version):
    assert configuration_bytes(probe, {"max_age": 600}, "struct", version) == struct_with_one_number("max_age", 600)


@pytest.mark.parametrize("version", [v.version for v in VERSIONS])
def test_a_string_value_reaches_the_wasm_filter_as_its_text(probe, version):
    assert configuration_bytes(probe, '{"max_age": 600}', "json", version) == b'{"max_age": 600}'
