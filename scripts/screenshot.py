"""Writes docs/demo.png: the demo page as `make demo` serves it (envoy/demo.yaml on the demo's own
ports), rendered by headless Chromium once its scenarios ran. Run by `make screenshot`, from the
repository root: `.venv/bin/python -m scripts.screenshot`. The only thing that writes
docs/demo.png; the browser tests take their screenshot into a temporary directory.

Refuses to write a picture of a page whose verdicts were not all as expected, and fails when a
demo port is in use (stop `make demo` first).
"""

import shutil
import sys
import tempfile
from pathlib import Path

from scripts.demo_tls import make as demo_tls
from tests.harness.browser import (DEMO_PORTS, SCREENSHOT_SIZE, demo_url, dump_dom, page_results, screenshot,
                                   start_demo_envoy)
from tests.harness.envoy import ROOT

OUT = ROOT / "docs" / "demo.png"


def main():
    with tempfile.TemporaryDirectory(prefix="cors-screenshot-") as d:
        # The demo's TLS listeners need a certificate, even though the picture is over HTTP/1.1.
        demo_tls(Path(d) / "tls")
        try:
            envoy = start_demo_envoy(DEMO_PORTS, Path(d) / "api-access.log", Path(d) / "tls")
        except RuntimeError as e:
            sys.exit(f"screenshot: Envoy did not start on the demo's ports {sorted(DEMO_PORTS.values())} "
                     f"(is `make demo` running?):\n{e}")
        try:
            url = demo_url(DEMO_PORTS)
            results = page_results(dump_dom(url))
            if results["as_expected"] != results["total"]:
                sys.exit(f"screenshot: only {results['as_expected']} of {results['total']} verdicts as expected; "
                         f"{OUT} left as it is")
            # Into a new file first: a failed run leaves the old picture in place.
            screenshot(url, Path(d) / "demo.png", *SCREENSHOT_SIZE)
            shutil.copyfile(Path(d) / "demo.png", OUT)
        finally:
            envoy.stop()
    print(f"screenshot: {OUT.relative_to(ROOT)} ({OUT.stat().st_size} bytes)")


if __name__ == "__main__":
    main()
