"""The README's pictures (docs/*.svg) come from the real commands: the helper that made them
still runs, and what is committed is small, well-formed SVG naming what the commands name."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from docs_pictures import ROOT, generate

PICTURES = ("demo-sequence.svg", "conformance-matrix.svg", "capture-stats.svg")


def words(path: Path) -> str:
    root = ET.parse(path).getroot()
    assert root.tag == "{http://www.w3.org/2000/svg}svg"
    return " ".join(t.text or "" for t in root.iter("{http://www.w3.org/2000/svg}text"))


@pytest.mark.parametrize("name", PICTURES)
def test_committed_picture_is_small_wellformed_svg_shown_in_the_readme(name: str) -> None:
    path = ROOT / "docs" / name
    assert path.stat().st_size < 64 * 1024
    words(path)
    assert f"(docs/{name})" in (ROOT / "README.md").read_text(encoding="utf-8")


def test_the_helper_regenerates_every_picture(tmp_path: Path) -> None:
    written = generate(tmp_path)
    assert [p.name for p in written] == list(PICTURES)
    demo, matrix, stats = (words(p) for p in written)
    assert "NDIS_STATUS_INVALID_PARAMETER" in demo and "recorder" in demo
    assert "encapsulation-short-buffer" in matrix and "xennet" in matrix
    assert "coalesced receive" in stats and "unsegmented LSO send" in stats
