"""The filter's own configuration parser, reached from Python, and the plugin-config JSON Schema.

`CorsExplain.verdict(config)` asks the real parser whether it accepts a plugin configuration:
`cors-explain --check` runs the parser of cors-core, the code compiled into
build/cors_filter.wasm, on the bytes a `google.protobuf.StringValue` of JSON text hands the filter
(what Istio's WasmPlugin and Envoy Gateway send). tests/test_bad_config.py proves that, for every
kind of mistake, `cors-explain --check` refuses with the very message Envoy logs when it loads the
module, so checks that need only the verdict ask cors-explain and start no Envoy.
"""

import json
import re
import subprocess
import tempfile
from pathlib import Path

import jsonschema

from tests.harness.envoy import ROOT

SCHEMA_PATH = ROOT / "schema" / "plugin-config.schema.json"

_REFUSAL = re.compile(r"invalid plugin configuration: (.*)")


def refusal(output):
    """The parser's refusal in Envoy's log or cors-explain's output, or None."""
    m = _REFUSAL.search(output)
    return m.group(1).strip() if m else None


class CorsExplain:
    """The `cors-explain` binary (see the `cors_explain` fixture in tests/conftest.py)."""

    def __init__(self, binary):
        self.binary = binary

    def check_file(self, path):
        """`cors-explain --check FILE` (a plugin configuration, or an Envoy config holding our
        filter): (accepted, message), message being the parser's refusal or '' when accepted.
        Raises when cors-explain fails for another reason."""
        p = subprocess.run([str(self.binary), "--check", str(path)], capture_output=True, text=True, timeout=60)
        if p.returncode == 0:
            return True, ""
        message = refusal(p.stderr)
        if p.returncode != 1 or message is None:
            raise RuntimeError(f"cors-explain --check {path}: exit {p.returncode}\n{p.stdout}{p.stderr}")
        return False, message

    def verdict(self, configuration):
        """`check_file` on a plugin configuration given as a dict or as JSON text."""
        text = configuration if isinstance(configuration, str) else json.dumps(configuration)
        with tempfile.TemporaryDirectory(prefix="cors-check-") as d:
            path = Path(d) / "plugin-config.json"
            path.write_text(text)
            return self.check_file(path)

    def known_fields(self, configuration):
        """The field names the parser knows at the object where `configuration` has an unknown
        field, read from its "unknown field (known fields here: …)" refusal."""
        accepted, message = self.verdict(configuration)
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
