"""Building blocks for the SVG pictures: elements built with :mod:`xml.etree` (so every
label is escaped and the document is well-formed XML), a text width estimate, the palette.

Pictures use generic font families only (no font files, no network) and presentation
attributes rather than CSS, so they render the same standalone, inline in HTML, and as an
``<img>`` on GitHub.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET

SVG_NS = "http://www.w3.org/2000/svg"
FONT = "ui-monospace, SFMono-Regular, Menlo, Consolas, 'DejaVu Sans Mono', monospace"
CHAR_WIDTH = 0.62
"""Advance of one monospace character, in ems (DejaVu Sans Mono: 0.602)."""

TONES = {
    "call": "#1f2937",
    "ok": "#15803d",
    "pending": "#b45309",
    "fail": "#b91c1c",
    "indication": "#7e22ce",
    "muted": "#6b7280",
    "grid": "#d1d5db",
}
"""Colours by meaning: requests, success, pending, failure, status indications."""

SERIES = ("#2563eb", "#ea580c", "#16a34a", "#9333ea", "#dc2626", "#0891b2", "#ca8a04", "#db2777")
"""Colours of chart series, in order."""


def text_width(text: str, size: float) -> float:
    """Estimated width in pixels of ``text`` at font ``size`` (monospace)."""
    return len(text) * size * CHAR_WIDTH


def fmt(value: float) -> str:
    """A coordinate, short: ``12``, ``12.5``."""
    return f"{value:.1f}".removesuffix(".0")


def svg_root(width: float, height: float, title: str) -> ET.Element:
    """An ``<svg>`` with a viewBox, a white background and an accessible ``<title>``."""
    root = ET.Element(
        "svg",
        {
            "xmlns": SVG_NS,
            "width": fmt(width),
            "height": fmt(height),
            "viewBox": f"0 0 {fmt(width)} {fmt(height)}",
            "font-family": FONT,
            "role": "img",
        },
    )
    ET.SubElement(root, "title").text = title
    ET.SubElement(root, "rect", {"width": "100%", "height": "100%", "fill": "#ffffff"})
    return root


def sub(parent: ET.Element, tag: str, text: str | None = None, /, **attrs: str | float
        ) -> ET.Element:  # fmt: skip
    """A child element; attribute names use ``_`` for ``-`` (``font_size``)."""
    element = ET.SubElement(
        parent,
        tag,
        {k.rstrip("_").replace("_", "-"): fmt(v) if isinstance(v, float | int) else v
         for k, v in attrs.items()},
    )  # fmt: skip
    if text is not None:
        element.text = text
    return element


def arrow_markers(root: ET.Element, tones: dict[str, str]) -> None:
    """One arrowhead marker per tone, ``id="arrow-<tone>"``."""
    defs = sub(root, "defs")
    for tone, colour in tones.items():
        marker = sub(defs, "marker", id=f"arrow-{tone}", viewBox="0 0 10 10", refX=9, refY=5,
                     markerWidth=7, markerHeight=7, orient="auto-start-reverse")  # fmt: skip
        sub(marker, "path", d="M 0 0 L 10 5 L 0 10 z", fill=colour)


def to_string(root: ET.Element) -> str:
    """The document as text, with an XML declaration (a standalone ``.svg`` file)."""
    ET.indent(root, space=" ")
    return ET.tostring(root, encoding="unicode", xml_declaration=True) + "\n"


def to_inline(root: ET.Element) -> str:
    """The ``<svg>`` element alone, for embedding in HTML."""
    ET.indent(root, space=" ")
    return ET.tostring(root, encoding="unicode")
