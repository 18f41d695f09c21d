"""The filter's own configuration parser, reached from Python, and the plugin-config JSON Schema.

`parser_verdict(config)` asks the real parser (the Rust code compiled into build/cors_filter.wasm)
whether it accepts a plugin configuration: `envoy --mode validate` loads the module with the
configuration as a `google.protobuf.StringValue` of JSON text (what Istio's WasmPlugin and Envoy
Gateway send) and runs `on_configure`, which refuses what the parser refuses. (When `cors-explain
--check` exists it can replace this; the verdicts must stay the same.)
"""

import json
import re
from pathlib import Path

import jsonschema

import envoy

ROOT = Path(__file__).resolve().parent.parent
SCHEMA_PATH = ROOT / "schema" / "plugin-config.schema.json"

_REFUSAL = re.compile(r"invalid plugin configuration: (.*)")


def _bootstrap(configuration):
    vhost = {"name": "vh", "domains": ["*"], "routes": [envoy.route("r")]}
    return envoy.bootstrap(
        [envoy.listener("check", 10001, [envoy.wasm_filter(configuration, encoding="json")], [vhost])],
        [envoy.upstream_cluster(10002)],
        10003,
    )


def parser_verdict(configuration):
    """(accepted, message): message is the parser's refusal, or '' when accepted.
    `configuration` is a dict or JSON text. Raises if Envoy fails for another reason."""
    if not envoy.WASM.exists():
        raise RuntimeError(f"{envoy.WASM} missing: run `make build`")
    code, out = envoy.validate(_bootstrap(configuration))
    if code == 0:
        return True, ""
    m = _REFUSAL.search(out)
    if not m:
        raise RuntimeError(f"envoy --mode validate failed, not on the plugin configuration:\n{out[-3000:]}")
    return False, m.group(1).strip()


def known_fields(configuration):
    """The field names the parser knows at the object where `configuration` has an unknown
    field, read from its "unknown field (known fields here: …)" refusal."""
    accepted, message = parser_verdict(configuration)
    m = re.search(r"unknown field \(known fields here: ([^)]*)\)", message)
    if accepted or not m:
        raise AssertionError(f"expected an unknown-field refusal, got accepted={accepted}: {message!r}")
    return {name.strip() for name in m.group(1).split(",")}


def schema():
    return json.loads(SCHEMA_PATH.read_text())


def schema_errors(configuration):
    """The JSON Schema's complaints about a configuration (empty list: valid)."""
    validator = jsonschema.Draft202012Validator(schema(), format_checker=jsonschema.FormatChecker())
    return [f"{'/'.join(map(str, e.absolute_path)) or '<root>'}: {e.message}"
            for e in validator.iter_errors(configuration)]
