"""The documentation holds together: every relative link and anchor resolves, the field reference in
docs/configuration.md names exactly the fields of schema/plugin-config.schema.json, the plugin
configurations shown in Envoy YAML are accepted by the filter's parser, and the README stays a
five-minute read. (The cors-explain console examples of docs/troubleshooting.md are run by
`troubleshooting_guide_shows_the_real_output_of_cors_explain` in crates/cors-explain/tests.)

Field tables: a table that documents part of the schema is preceded by the comment
`<!-- schema: POINTER -->`, where POINTER is the JSON pointer of a `properties` object in the schema
(`#/properties`, `#/$defs/envoyPolicy/properties`, …). Each row's first cell is one field name in
backticks. Anchors follow GitHub's heading slugs: the heading's text, lower-cased, without
punctuation, spaces turned into hyphens, `-1`, `-2`, … added to repeats.
"""

import json
import re

import pytest
import yaml

from tests.harness.envoy import ROOT

DOCS = [ROOT / "README.md", ROOT / "CONTRIBUTING.md", *sorted((ROOT / "docs").glob("*.md"))]
REFERENCE = ROOT / "docs" / "configuration.md"
SCHEMA = ROOT / "schema" / "plugin-config.schema.json"
README_MAX_LINES = 250
STRUCT_TYPE = "type.googleapis.com/google.protobuf.Struct"

# The parts of the schema the reference must document, each in a marked table.
REQUIRED_TABLES = {"#/properties", "#/$defs/envoyPolicy/properties", "#/$defs/gatewayApiPolicy/properties"}

FENCE = re.compile(r"^\s*(```|~~~)")
HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$")
INLINE_CODE = re.compile(r"(`+)(.+?)\1")
# [text](target) and ![alt](target), with an optional "title"; reference definitions `[x]: target`.
INLINE_LINK = re.compile(r"!?\[(?:[^\[\]]|\[[^\[\]]*\])*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
LINK_DEFINITION = re.compile(r"^\s{0,3}\[[^\]]+\]:\s*<?(\S+?)>?(?:\s+\"[^\"]*\")?\s*$")
HTML_ANCHOR = re.compile(r"<a\s+(?:name|id)=\"([^\"]+)\"")
SCHEMA_MARK = re.compile(r"^<!--\s*schema:\s*(\S+)\s*-->\s*$")
FIELD_CELL = re.compile(r"^`([^`]+)`$")


def prose_lines(text):
    """(line number, line) outside fenced code blocks."""
    fenced = False
    for number, line in enumerate(text.splitlines(), 1):
        if FENCE.match(line):
            fenced = not fenced
            continue
        if not fenced:
            yield number, line


def slug(heading):
    """GitHub's anchor for a heading's text (github-slugger: lower case, punctuation removed,
    each space a hyphen)."""
    text = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", heading)  # links: their text
    text = re.sub(r"<[^>]+>", "", text)  # inline HTML
    return re.sub(r"[^\w\- ]", "", text.lower()).replace(" ", "-")


def anchors(path):
    seen = {}
    found = set()
    for _, line in prose_lines(path.read_text()):
        found.update(HTML_ANCHOR.findall(line))
        m = HEADING.match(line)
        if not m:
            continue
        base = slug(m.group(2))
        n = seen.get(base, 0)
        seen[base] = n + 1
        found.add(base if n == 0 else f"{base}-{n}")
    return found


def links(path):
    """(line number, target) of every link in prose: inline code is not prose either."""
    for number, line in prose_lines(path.read_text()):
        text = INLINE_CODE.sub("", line)
        for target in INLINE_LINK.findall(text):
            yield number, target
        m = LINK_DEFINITION.match(text)
        if m:
            yield number, m.group(1)


def shown(path):
    return str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else path.name


def broken_links(path):
    problems = []
    for number, target in links(path):
        if re.match(r"^[a-zA-Z][a-zA-Z0-9+.-]*:", target):  # https:, mailto:, …: not checked here
            continue
        file_part, _, anchor = target.partition("#")
        where = f"{shown(path)}:{number}: {target}"
        linked = (path.parent / file_part).resolve() if file_part else path
        if not linked.exists():
            problems.append(f"{where}: no such file")
        elif anchor and linked.suffix == ".md" and anchor not in anchors(linked):
            problems.append(f"{where}: no heading with that anchor in {shown(linked)}")
    return problems


def field_tables(path):
    """{schema pointer: [field names]} from the marked tables of `path`."""
    tables = {}
    lines = list(prose_lines(path.read_text()))
    for i, (number, line) in enumerate(lines):
        m = SCHEMA_MARK.match(line)
        if not m:
            continue
        rows = []
        for _, row in lines[i + 1:]:
            if not row.startswith("|"):
                break
            rows.append([cell.strip() for cell in row.strip().strip("|").split("|")])
        assert len(rows) > 2, f"{path.name}:{number}: the mark {m.group(1)} is not followed by a table"
        names = []
        for cells in rows[2:]:  # after the header and its separator
            field = FIELD_CELL.match(cells[0])
            assert field, f"{path.name}: a row of the {m.group(1)} table does not start with `field`: {cells[0]!r}"
            names.append(field.group(1))
        assert m.group(1) not in tables, f"{path.name}: two tables are marked {m.group(1)}"
        tables[m.group(1)] = names
    return tables


def schema_fields(pointer):
    node = json.loads(SCHEMA.read_text())
    for part in pointer.removeprefix("#/").split("/"):
        node = node[part.replace("~1", "/").replace("~0", "~")]
    return set(node)


def yaml_blocks(path):
    """The ```yaml blocks of a page, as text."""
    return re.findall(r"^```yaml\n(.*?)^```", path.read_text(), re.S | re.M)


def plugin_configurations(node):
    """Every inline plugin configuration (a Struct's `value`) in a parsed Envoy YAML fragment; a
    native per-route entry's policy as the plugin configuration `{policy: ...}` it would be."""
    if isinstance(node, dict):
        if str(node.get("@type", "")).endswith(".DynamicModuleFilterPerRoute"):
            entry = node.get("filter_config", {})
            if entry.get("@type") == STRUCT_TYPE and entry.get("value"):
                yield {"policy": entry["value"]}
            return
        if node.get("@type") == STRUCT_TYPE and "value" in node:
            yield node["value"]
        for child in node.values():
            yield from plugin_configurations(child)
    elif isinstance(node, list):
        for child in node:
            yield from plugin_configurations(child)


@pytest.mark.parametrize("path", DOCS, ids=[str(p.relative_to(ROOT)) for p in DOCS])
def test_every_relative_link_and_anchor_resolves(path):
    assert path.exists(), f"{path.relative_to(ROOT)} is missing"
    assert not broken_links(path), "\n".join(broken_links(path))


def test_the_field_reference_documents_every_schema_field_and_no_other():
    tables = field_tables(REFERENCE)
    assert REQUIRED_TABLES <= set(tables), f"missing field tables: {REQUIRED_TABLES - set(tables)}"
    problems = []
    for pointer, names in tables.items():
        documented, fields = set(names), schema_fields(pointer)
        if len(names) != len(documented):
            problems.append(f"{pointer}: a field has two rows: {sorted(n for n in documented if names.count(n) > 1)}")
        if fields - documented:
            problems.append(f"{pointer}: in the schema, not in the reference: {sorted(fields - documented)}")
        if documented - fields:
            problems.append(f"{pointer}: in the reference, not in the schema: {sorted(documented - fields)}")
    assert not problems, "\n".join(problems)


def test_every_inline_plugin_configuration_shown_is_accepted_by_the_filter(cors_explain):
    """The examples are true: each configuration shown in Envoy YAML passes the filter's own
    parser (`cors-explain --check`, the code compiled into the .wasm)."""
    examples = [(shown(path), c) for path in DOCS for block in yaml_blocks(path) if STRUCT_TYPE in block
                for c in plugin_configurations(yaml.safe_load(block))]
    assert len(examples) >= 2, examples  # the README's and the migration guide's
    refused = [f"{where}: {message}" for where, c in examples for accepted, message in [cors_explain.verdict(c)]
               if not accepted]
    assert not refused, "\n".join(refused)


def test_readme_is_a_five_minute_read():
    lines = len((ROOT / "README.md").read_text().splitlines())
    assert lines <= README_MAX_LINES, f"README.md has {lines} lines; move detail into docs/"


# The checks themselves, on small inputs: they must be able to fail.

def test_slugs_follow_github(tmp_path):
    assert slug("3. `cors-explain`: what the filter does with a request") == "3-cors-explain-what-the-filter-does-with-a-request"
    assert slug("Envoy's native CORS filter — left on the route") == "envoys-native-cors-filter--left-on-the-route"
    assert slug("Fractions: `filter_enabled` and [x](y.md)") == "fractions-filter_enabled-and-x"
    page = tmp_path / "page.md"
    page.write_text("# Title\n## Usage\n## Usage\n```\n# not a heading\n```\n")
    assert anchors(page) == {"title", "usage", "usage-1"}


def test_broken_links_and_anchors_are_reported(tmp_path):
    (tmp_path / "other.md").write_text("# Other\n")
    page = tmp_path / "page.md"
    page.write_text("# Page\n[ok](other.md#other) [ok](#page) [web](https://example.com/x#y) `[code](missing.md)`\n"
                    "[gone](missing.md) [bad anchor](other.md#nope) [here](#nowhere)\n"
                    "```\n[fenced](missing.md)\n```\n[def]: missing-too.md\n")
    assert [p.split(": ", 1)[1] for p in broken_links(page)] == [
        "missing.md: no such file",
        "other.md#nope: no heading with that anchor in other.md",
        "#nowhere: no heading with that anchor in page.md",
        "missing-too.md: no such file",
    ]


def test_field_tables_are_read_from_their_marks(tmp_path):
    page = tmp_path / "reference.md"
    page.write_text("<!-- schema: #/properties -->\n| Field | Meaning |\n|---|---|\n| `policy` | x |\n"
                    "| `routes` | y |\n\nText.\n\n| `not` | marked |\n")
    assert field_tables(page) == {"#/properties": ["policy", "routes"]}
    page.write_text("<!-- schema: #/properties -->\n| Field | Meaning |\n|---|---|\n| policy | no backticks |\n")
    with pytest.raises(AssertionError, match="does not start with `field`"):
        field_tables(page)
