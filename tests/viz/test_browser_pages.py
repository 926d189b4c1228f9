"""Every page and picture opened in a real headless Chromium: the screenshot is a picture
(not empty, not blank) and the DOM the browser built holds the facts the command found (lanes,
statuses, check names, flows). Skips with a reason when no browser is installed."""

from __future__ import annotations

import io
import json
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from conformance_json import miniports, rows
from headless import browser_or_skip, colour_stats, decode_png, render
from rich.console import Console
from test_viz_capture import capture

from ndis_offload.cli.main import main

ROOT = Path(__file__).resolve().parents[2]


def cli(*argv: str) -> tuple[int, str]:
    out = io.StringIO()
    code = main(list(argv), console=Console(file=out, width=120))
    return code, out.getvalue()


@pytest.fixture(scope="module")
def browser() -> str:
    return browser_or_skip()


@pytest.fixture(scope="module")
def pages(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """Every picture the CLI draws, made once for the module."""
    out = tmp_path_factory.mktemp("pages")
    assert cli("demo", "--svg", str(out / "demo.svg"), "--html", str(out / "demo.html"))[0] == 0
    scenario = ROOT / "tests" / "scenarios" / "enable.json"
    assert cli("run", str(scenario), "--html", str(out / "run.html"))[0] == 0
    code, text = cli("conformance", "--all", "--json", "--html", str(out / "conformance.html"),
                     "--svg", str(out / "conformance.svg"))  # fmt: skip
    assert code == 1
    (out / "conformance.json").write_text(text[text.index("{") :])  # after the "wrote" lines
    path = capture(out / "c.pcap")
    assert cli("pcap", "stats", str(path), "--html", str(out / "capture.html"))[0] == 0
    (out / "capture.json").write_text(cli("pcap", "stats", str(path), "--json")[1])
    yield out


def open_page(browser: str, page: Path, shot: Path) -> str:
    """Load ``page``; assert its screenshot is a picture; return the DOM."""
    png, dom = render(browser, page, shot)
    assert len(png) > 5_000
    colours, inked = colour_stats(png)
    assert colours >= 16, f"{page.name}: {colours} colours, looks blank"
    assert inked >= 0.02, f"{page.name}: only {inked:.1%} of the pixels are not background"
    return dom


def visible(dom: str) -> str:
    """Text content of a DOM dump (tags dropped, entities left alone: labels have none)."""
    return re.sub(r"<[^>]+>", " ", dom).replace("&gt;", ">").replace("&amp;", "&")


def test_demo_page(browser: str, pages: Path, tmp_path: Path) -> None:
    dom = open_page(browser, pages / "demo.html", tmp_path / "demo.png")
    text = visible(dom)
    for lane in ("tcpip", "tcpip6", "llcsnap", "NDIS", "recorder", "miniport(full)"):
        assert f">{lane}<" in dom, lane
    for status in ("NDIS_STATUS_SUCCESS", "NDIS_STATUS_INVALID_PARAMETER",
                   "NDIS_STATUS_TASK_OFFLOAD_CURRENT_CONFIG"):  # fmt: skip
        assert status in text, status
    assert "Current config before" in text and "After disable (NDIS_STATUS_SUCCESS)" in text
    assert dom.count("<svg") == 1 and "<script" not in dom


def test_demo_svg_alone(browser: str, pages: Path, tmp_path: Path) -> None:
    dom = open_page(browser, pages / "demo.svg", tmp_path / "demo-svg.png")
    assert "ProtocolBindAdapterEx" in dom and "NDIS_STATUS_INVALID_PARAMETER" in dom


def test_run_page(browser: str, pages: Path, tmp_path: Path) -> None:
    dom = open_page(browser, pages / "run.html", tmp_path / "run.png")
    text = visible(dom)
    for needle in ("Configuration at initialization", "query OID_OFFLOAD_ENCAPSULATION",
                   "NDIS_STATUS_FAILURE", "ProtocolUnbindAdapterEx"):  # fmt: skip
        assert needle in text, needle


def test_conformance_page(browser: str, pages: Path, tmp_path: Path) -> None:
    dom = open_page(browser, pages / "conformance.html", tmp_path / "conformance.png")
    text = visible(dom)
    data = json.loads((pages / "conformance.json").read_text())
    for miniport in miniports(data):
        assert f">{miniport}<" in dom
    for r in rows(data):
        assert r.name in text
    failures = sum(r.failed for r in rows(data))
    assert dom.count('<details class="failure">') == failures
    assert len(re.findall(r'<td class="fail">FAIL</td>', dom)) == failures


def test_conformance_matrix_svg(browser: str, pages: Path, tmp_path: Path) -> None:
    dom = open_page(browser, pages / "conformance.svg", tmp_path / "matrix.png")
    assert "encapsulation-short-buffer" in dom and "FAIL" in dom and "xennet" in dom


def test_capture_page(browser: str, pages: Path, tmp_path: Path) -> None:
    dom = open_page(browser, pages / "capture.html", tmp_path / "capture.png")
    text = visible(dom)
    data = json.loads((pages / "capture.json").read_text())
    for flow in data["flows"]:
        assert flow["flow"] in text
    for title in ("Frame sizes", "Throughput", "Offload artifacts over time"):
        assert title in text
    assert dom.count("<svg") == 3 and dom.count("<polyline") >= 3


def test_png_reader_agrees_with_pillow(browser: str, pages: Path, tmp_path: Path) -> None:
    image = pytest.importorskip("PIL.Image", reason="Pillow is the oracle for the PNG reader")
    import numpy as np

    png, _ = render(browser, pages / "demo.html", tmp_path / "p.png", size=(700, 500))
    ours = decode_png(png)
    theirs = np.asarray(image.open(tmp_path / "p.png").convert("RGB"))
    assert (ours[..., :3] == theirs).all()


def test_without_a_browser_the_page_tests_skip_and_say_why(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CHROMIUM", raising=False)
    monkeypatch.setenv("PATH", "/nonexistent")
    with pytest.raises(pytest.skip.Exception, match="apt-get install chromium"):
        browser_or_skip()
