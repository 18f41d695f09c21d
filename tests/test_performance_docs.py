"""The figures docs/performance.md quotes are those of the generated bench/instructions.md: the
instructions per request it copies into its tables and prose, and the ratios it derives from them.
A new `make bench-quick` that moves a figure fails here until the page is updated with it."""

import re

from tests.harness.envoy import ROOT

PAGE = (ROOT / "docs" / "performance.md").read_text()
GENERATED = (ROOT / "bench" / "instructions.md").read_text()

# The page says "GET without Origin" where the generated file says "request without Origin".
REQUEST_NAMES = {"allowed preflight": "allowed preflight", "actual GET with Origin": "actual GET with Origin",
                 "GET without Origin": "request without Origin"}


def generated():
    """{(request, listener): instructions per request in thousands} from bench/instructions.md."""
    out = {}
    for request, listener, total in re.findall(r"^\| ([^|]+?) \| (\w+) \| ([\d.]+)k \|", GENERATED, re.M):
        out.setdefault((request, listener), float(total))  # the first table: the run itself
    return out


def page_table():
    """The native build's table on the page: {request: {column: value in thousands}}."""
    header = "| request | none | envoy_cors | floor_so | ours_so |"
    lines = PAGE.split(header, 1)[1].splitlines()[2:5]
    out = {}
    for line in lines:
        cells = [c.strip() for c in line.strip("|").split("|")]
        out[cells[0]] = dict(zip(["none", "envoy_cors", "floor_so", "ours_so", "ours_so - floor_so",
                                  "floor_so - reference"], cells[1:]))
    return out


def k(cell):
    return float(re.match(r"\+?([\d.]+)k", cell).group(1))


def test_the_generated_file_names_the_machine_and_date_it_ran_on():
    assert re.match(r"Envoy 1\.40\.0, \d{4}-\d\d-\d\d; .+, \d+ cores, ", GENERATED)


def test_the_native_table_copies_each_listeners_figure_from_the_generated_file():
    figures, table = generated(), page_table()
    assert sorted(table) == sorted(REQUEST_NAMES)
    for request, row in table.items():
        for listener in ("none", "envoy_cors", "floor_so", "ours_so"):
            assert k(row[listener]) == figures[(REQUEST_NAMES[request], listener)], (request, listener)


def test_the_native_tables_differences_are_those_of_its_figures():
    for request, row in page_table().items():
        reference = "none" if request == "GET without Origin" else "envoy_cors"
        assert k(row["ours_so - floor_so"]) == round(k(row["ours_so"]) - k(row["floor_so"]), 1), request
        assert k(row["floor_so - reference"]) == round(k(row["floor_so"]) - k(row[reference]), 1), request


def test_the_floor_ratios_in_the_prose_are_those_of_the_generated_figures():
    f = generated()
    quoted = re.search(r"The floor itself is at ([\d.]+) of `envoy_cors` on the preflight, ([\d.]+) on the actual "
                       r"request and\s+([\d.]+) of `none` without Origin", PAGE)
    assert quoted, "the sentence with the floor's ratios moved: update this test"
    expected = [f[("allowed preflight", "envoy_cors")] / f[("allowed preflight", "floor_so")],
                f[("actual GET with Origin", "envoy_cors")] / f[("actual GET with Origin", "floor_so")],
                f[("request without Origin", "none")] / f[("request without Origin", "floor_so")]]
    assert [float(q) for q in quoted.groups()] == [round(e, 3) for e in expected]


def test_the_wasm_gap_without_origin_in_the_prose_is_that_of_the_generated_figures():
    f = generated()
    quoted = re.search(r"\(`ours/floor` ([\d.]+), goal 0\.90\): ours ([\d.]+)k against the\s+floor's ([\d.]+)k, "
                       r"\+([\d.]+)k", PAGE)
    assert quoted, "the sentence on the Wasm build without Origin moved: update this test"
    ratio, ours, floor, gap = (float(q) for q in quoted.groups())
    assert ours == f[("request without Origin", "ours")] and floor == f[("request without Origin", "floor")]
    assert ratio == round(floor / ours, 3) and gap == round(ours - floor, 1)
