"""The Mermaid output rendered by Mermaid itself (``mermaid.min.js`` from the npm package, as
GitHub renders Markdown diagrams) in headless Chromium: it must parse, and the drawing must
name every participant and message. Skips with a reason without a browser or without
mermaid.min.js (``MERMAID_JS``, or ``.ci/cache/mermaid.min.js`` that ``.ci/run`` fetches
with ``npm pack``)."""

from __future__ import annotations

import io
import json
import os
import re
import shutil
from pathlib import Path

import pytest
from headless import browser_or_skip, render
from rich.console import Console

from ndis_offload.cli.main import main

ROOT = Path(__file__).resolve().parents[2]

HARNESS = """<!DOCTYPE html>
<html><head><meta charset="utf-8"><script src="mermaid.min.js"></script></head>
<body><div id="out">pending</div>
<script>
const source = %s;
mermaid.initialize({startOnLoad: false, securityLevel: "strict"});
mermaid.render("diagram", source).then(
  (r) => { document.getElementById("out").innerHTML = r.svg; document.title = "rendered"; },
  (e) => { document.getElementById("out").textContent = "MERMAID ERROR: " + e; });
</script></body></html>
"""


def mermaid_js() -> Path:
    given = os.environ.get("MERMAID_JS")
    for candidate in (Path(given) if given else None, ROOT / ".ci" / "cache" / "mermaid.min.js"):
        if candidate is not None and candidate.is_file():
            return candidate
    pytest.skip("no mermaid.min.js: set MERMAID_JS or run .ci/run (npm pack mermaid)")


def rendered(browser: str, source: str, tmp_path: Path) -> str:
    shutil.copy(mermaid_js(), tmp_path / "mermaid.min.js")
    page = tmp_path / "harness.html"
    page.write_text(HARNESS % json.dumps(source), encoding="utf-8")
    _, dom = render(browser, page, tmp_path / "m.png")
    assert ">MERMAID ERROR" not in dom, re.search(r">MERMAID ERROR[^<]*", dom)
    assert "<title>rendered</title>" in dom, "Mermaid did not finish"
    return dom


def cli_mermaid(tmp_path: Path, *argv: str) -> str:
    target = tmp_path / "out.mmd"
    main([*argv, "--mermaid", str(target)], console=Console(file=io.StringIO(), width=120))
    return target.read_text(encoding="utf-8")


@pytest.fixture(scope="module")
def browser() -> str:
    return browser_or_skip()


def test_demo_sequence_renders_in_mermaid(browser: str, tmp_path: Path) -> None:
    source = cli_mermaid(tmp_path, "demo")
    dom = rendered(browser, source, tmp_path)
    for lane in ("tcpip", "tcpip6", "llcsnap", "NDIS", "recorder (filter)", "miniport(full)"):
        assert lane in dom, lane
    assert "NDIS_STATUS_INVALID_PARAMETER (set OID_OFFLOAD_ENCAPSULATION)" in dom
    # "#59;" came back as ";" (Mermaid decoded our entity)
    assert "IPv4 ON 802.3 header 14; IPv6 ON 802.3 header 14" in dom


def test_conformance_failures_render_in_mermaid(browser: str, tmp_path: Path) -> None:
    source = cli_mermaid(tmp_path, "conformance", "--all")
    dom = rendered(browser, source, tmp_path)
    assert "netvsp" in dom and "NDIS_STATUS_INVALID_DATA" in dom
    assert "expected NDIS_STATUS_INVALID_LENGTH or _BUFFER_TOO_SHORT, BytesNeeded &gt;= 28" in dom
