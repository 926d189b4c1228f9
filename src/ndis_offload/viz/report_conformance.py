"""Conformance pictures: the matrix of miniports x checks (SVG and a self-contained HTML page
whose failures open to what was sent, expected and seen, with the documentation page), and
the failures as a Mermaid sequence diagram.

The battery's result objects are read through :func:`check_view` (attribute names, not
types), so the pictures follow the battery's results as they grow: ``name``, ``rule``,
``expected``, and either ``status`` (``pass``/``fail``/``error``/``timeout``/``skip``) or
``passed``; ``seen`` (or ``observed``), ``sent``, ``family``, ``page``, ``traceback``,
``duration``, ``reading`` and ``details`` when present. A run is either a mapping of
miniport name to results or a sequence of per-miniport reports (``target``, ``results``).
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from html import escape
from typing import Any

from ndis_offload.viz import html
from ndis_offload.viz.mermaid import escape as mermaid_escape
from ndis_offload.viz.outputs import Pictures
from ndis_offload.viz.svg import TONES, sub, svg_root, text_width, to_inline, to_string

FAILED = ("fail", "error", "timeout")
CELL_CLASS = {"pass": "ok", "fail": "fail", "error": "fail", "timeout": "fail", "skip": "none"}
CELL_FILL = {"pass": "#dcfce7", "fail": "#fee2e2", "error": "#fecaca", "timeout": "#fed7aa",
             "skip": "#f3f4f6"}  # fmt: skip


@dataclass(frozen=True)
class CheckView:
    """One check against one miniport, as the pictures show it."""

    name: str
    status: str
    rule: str = ""
    family: str = ""
    page: str = ""
    sent: str = ""
    expected: str = ""
    seen: str = ""
    traceback: str = ""
    duration: float = 0.0
    reading: str = ""
    """Which reading of an ambiguous page the check takes."""
    details: tuple[str, ...] = ()

    @property
    def failed(self) -> bool:
        return self.status in FAILED


def _text(result: Any, *names: str) -> str:
    for name in names:
        value = getattr(result, name, None)
        if value:
            return str(getattr(value, "value", value))
    return ""


def check_view(result: Any) -> CheckView:
    """Read a battery result (any of its shapes) into a :class:`CheckView`."""
    status = _text(result, "status").lower()
    if not status:
        status = "pass" if getattr(result, "passed", False) else "fail"
    return CheckView(
        name=_text(result, "name"),
        status=status,
        rule=_text(result, "rule"),
        family=_text(result, "family"),
        page=_text(result, "page"),
        sent=_text(result, "sent"),
        expected=_text(result, "expected"),
        seen=_text(result, "seen", "observed"),
        traceback=_text(result, "traceback"),
        duration=float(getattr(result, "duration", 0.0) or 0.0),
        reading=_text(result, "reading"),
        details=tuple(str(d) for d in getattr(result, "details", ()) or ()),
    )


Matrix = dict[str, list[CheckView]]
"""Miniport name -> its checks, in battery order."""


Run = Mapping[str, Sequence[Any]] | Sequence[Any]
"""Miniport name -> results, or per-miniport reports with ``target`` and ``results``."""


def matrix_of(run: Run) -> Matrix:
    """The run as a :data:`Matrix`, every result read through :func:`check_view`."""
    if isinstance(run, Mapping):
        pairs = list(run.items())
    else:
        pairs = [(str(report.target), report.results) for report in run]
    return {name: [check_view(r) for r in rs] for name, rs in pairs}


def _checks(matrix: Matrix) -> list[CheckView]:
    """Every check once, in battery order (the first miniport that ran it)."""
    seen: dict[str, CheckView] = {}
    for views in matrix.values():
        for v in views:
            seen.setdefault(v.name, v)
    return list(seen.values())


def _cell(matrix: Matrix, miniport: str, check: str) -> CheckView | None:
    return next((v for v in matrix[miniport] if v.name == check), None)


# --- SVG --------------------------------------------------------------------------------
ROW, COL, SIZE = 22.0, 84.0, 11.0


def matrix_element(matrix: Matrix, title: str = "Conformance") -> ET.Element:
    """The matrix as an ``<svg>``: one row per check, one column per miniport, each cell
    coloured by status with its expected / seen as the hover title; a heading row starts
    each family of checks (when the results name families)."""
    checks = _checks(matrix)
    layout: list[CheckView | str] = []
    for check in checks:
        if check.family and (not layout or _family_of(layout[-1]) != check.family):
            layout.append(check.family)
        layout.append(check)
    name_width = max([text_width(c.name, SIZE) for c in checks] + [80.0]) + 24
    col = max([COL] + [text_width(m, SIZE) + 16 for m in matrix])
    width = name_width + col * len(matrix) + 16
    top = 44.0
    height = top + ROW * (len(layout) + 1) + 40
    root = svg_root(width, height, title)
    sub(root, "text", title, x=12, y=22, font_size=13, font_weight="bold")
    for j, miniport in enumerate(matrix):
        x = name_width + col * j + col / 2
        sub(root, "text", miniport, x=x, y=top + 15, text_anchor="middle", font_size=SIZE,
            font_weight="bold")  # fmt: skip
    for i, item in enumerate(layout):
        y = top + ROW * (i + 1)
        if isinstance(item, str):
            sub(root, "text", item, x=12, y=y + 15, font_size=SIZE, font_weight="bold",
                fill=TONES["muted"], class_="family")  # fmt: skip
            continue
        check = item
        row = sub(root, "g", class_="check")
        label = sub(row, "text", check.name, x=12, y=y + 15, font_size=SIZE)
        if check.rule:
            sub(label, "title", check.rule)
        for j, miniport in enumerate(matrix):
            view = _cell(matrix, miniport, check.name)
            status = view.status if view else "skip"
            x = name_width + col * j
            cell = sub(row, "g", class_=f"cell {status}")
            hover = f"{miniport} · {check.name}: {status}"
            if view and view.failed:
                hover += f"\nexpected: {view.expected}\nseen: {view.seen}"
            sub(cell, "title", hover)
            sub(cell, "rect", x=x + 2, y=y + 2, width=col - 4, height=ROW - 4, rx=3,
                fill=CELL_FILL.get(status, "#f3f4f6"))  # fmt: skip
            colour = TONES["fail"] if status in FAILED else TONES["ok"]
            if status == "skip":
                colour = TONES["muted"]
            sub(cell, "text", status.upper() if status in FAILED else status, x=x + col / 2,
                y=y + 15, text_anchor="middle", font_size=SIZE, fill=colour,
                font_weight="bold" if status in FAILED else "normal")  # fmt: skip
    y = top + ROW * (len(layout) + 1) + 22
    totals = "   ".join(
        f"{m}: {sum(not v.failed for v in vs)}/{len(vs)} pass" for m, vs in matrix.items()
    )
    sub(root, "text", totals, x=12, y=y, font_size=SIZE, fill=TONES["muted"])
    return root


def _family_of(item: CheckView | str) -> str:
    return item if isinstance(item, str) else item.family


def matrix_svg(matrix: Matrix, title: str = "Conformance") -> str:
    """A standalone ``.svg`` of the matrix."""
    return to_string(matrix_element(matrix, title))


# --- HTML --------------------------------------------------------------------------------
def _failure(miniport: str, v: CheckView) -> str:
    pairs = [("miniport", miniport), ("check", v.name), ("status", v.status)]
    took = f"{v.duration * 1000:.1f} ms" if v.duration else ""
    pairs += [(k, val) for k, val in (("family", v.family), ("rule", v.rule),
              ("reading", v.reading), ("sent", v.sent), ("expected", v.expected),
              ("seen", v.seen), ("details", "; ".join(v.details)), ("duration", took))
              if val]  # fmt: skip
    inner = html.key_values(pairs)
    if v.page:
        inner += f"<p>documentation: {html.link(v.page)}</p>"
    if v.traceback:
        inner += f"<pre>{escape(v.traceback)}</pre>"
    return html.details(f"{miniport} · {v.name}: {v.status.upper()}", inner, css="failure")


def conformance_html(matrix: Matrix, title: str = "Conformance to the documented rules") -> str:
    """The page: the matrix (HTML table, cells coloured), then every failure collapsible."""
    checks = _checks(matrix)
    families: dict[str, list[list[html.Cell]]] = {}
    for check in checks:
        name: html.Cell = check.name
        row: list[html.Cell] = [name]
        for miniport in matrix:
            view = _cell(matrix, miniport, check.name)
            status = view.status if view else "not run"
            row.append((status.upper() if status in FAILED else status,
                        CELL_CLASS.get(status, "none")))  # fmt: skip
        row.append(html.Raw(html.link(check.page, _page_name(check.page))) if check.page else "-")
        families.setdefault(check.family, []).append(row)
    matrix_table = "\n".join(
        html.table(["check", *matrix, "documentation"], rows,
                   caption=f"{family or 'checks'} ({len(rows)})")
        for family, rows in families.items()
    )  # fmt: skip
    failures = [_failure(m, v) for m, vs in matrix.items() for v in vs if v.failed]
    totals = html.table(
        ["miniport", "pass", "fail", "checks"],
        [
            [
                m,
                str(sum(v.status == "pass" for v in vs)),
                (str(sum(v.failed for v in vs)), "fail" if any(v.failed for v in vs) else "ok"),
                str(len(vs)),
            ]
            for m, vs in matrix.items()
        ],  # fmt: skip
    )
    body = [
        html.section("Matrix", matrix_table, totals, anchor="matrix"),
        html.section(
            f"Failures ({len(failures)})",
            "\n".join(failures) or "<p>Every miniport passes every check.</p>",
            anchor="failures",
        ),
        html.section(
            "Matrix picture", html.figure(to_inline(matrix_element(matrix))), anchor="picture"
        ),  # fmt: skip
    ]
    subtitle = f"{len(checks)} checks against {len(matrix)} miniport(s): {', '.join(matrix)}"
    return html.page(title, body, subtitle)


def _page_name(url: str) -> str:
    """The last path part of a documentation URL (``oid-offload-encapsulation``)."""
    return url.rstrip("/").rsplit("/", 1)[-1] or url


# --- Mermaid -----------------------------------------------------------------------------
MERMAID_MAX_TEXT = 50_000
"""Mermaid's default ``maxTextSize``: a longer diagram is refused (GitHub shows an error)."""


def conformance_mermaid(matrix: Matrix, limit: int = MERMAID_MAX_TEXT) -> str:
    """Each failure as an exchange: the battery sends, the miniport answers (crossed), a
    note says what the documentation expects. Past ``limit`` characters the rest of the
    failures are counted in a last note, not drawn (the HTML report has every one)."""
    lines = ["sequenceDiagram", "    participant battery as conformance battery"]
    ids = {m: f"m{i}" for i, m in enumerate(matrix)}
    for miniport, ident in ids.items():
        lines.append(f"    participant {ident} as {mermaid_escape(miniport)}")
    failures = [(ids[m], v) for m, views in matrix.items() for v in views if v.failed]
    size = sum(len(line) + 1 for line in lines)
    for drawn, (ident, v) in enumerate(failures):
        sent = v.sent or v.rule or v.name
        exchange = [
            f"    battery->>{ident}: {mermaid_escape(v.name)}: {mermaid_escape(sent)}",
            f"    {ident}--x battery: {mermaid_escape(v.seen or v.status)}",
            f"    Note over battery,{ident}: expected {mermaid_escape(v.expected)}",
        ]
        cost = sum(len(line) + 1 for line in exchange)
        if size + cost + 120 > limit:
            left = len(failures) - drawn
            lines.append(f"    Note over battery: {left} more failure(s) not drawn (Mermaid's "
                         "size limit)#59; the --html report has every one")  # fmt: skip
            break
        lines += exchange
        size += cost
    if not failures:
        lines.append("    Note over battery: every miniport passes every check")
    return "\n".join(lines) + "\n"


def conformance_pictures(run: Run) -> Pictures:
    """``conformance --svg/--mermaid/--html`` of a battery run (see :data:`Run`)."""
    matrix = matrix_of(run)
    return Pictures(
        svg=lambda: matrix_svg(matrix),
        mermaid=lambda: conformance_mermaid(matrix),
        html=lambda: conformance_html(matrix),
    )
