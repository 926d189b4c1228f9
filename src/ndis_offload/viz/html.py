"""Self-contained HTML pages: one file, inline CSS and inline SVG, no script, no font file,
no network request. Collapsible parts are ``<details>`` elements, so they work with
JavaScript off and print expanded where the browser does.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from html import escape
from typing import Any

STYLE = """
:root { color-scheme: light; }
body { font: 14px/1.45 system-ui, -apple-system, 'Segoe UI', Roboto, sans-serif;
       margin: 24px auto; max-width: 1400px; padding: 0 16px; color: #111827; }
h1 { font-size: 22px; margin: 0 0 4px; }
h2 { font-size: 17px; margin: 28px 0 8px; border-bottom: 1px solid #e5e7eb; }
.sub { color: #6b7280; margin: 0 0 16px; }
.figure { overflow-x: auto; border: 1px solid #e5e7eb; border-radius: 6px; padding: 4px; }
.figure svg { max-width: 100%; height: auto; }
table { border-collapse: collapse; margin: 8px 0 16px; }
caption { text-align: left; font-weight: 600; padding: 4px 0; }
th, td { border: 1px solid #d1d5db; padding: 3px 8px; text-align: left; vertical-align: top; }
th { background: #f3f4f6; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
.ok { background: #dcfce7; color: #14532d; }
.fail { background: #fee2e2; color: #7f1d1d; font-weight: 600; }
.pending { background: #fef3c7; color: #78350f; }
.off { background: #fef2f2; color: #991b1b; }
.fixed, .none { color: #9ca3af; }
.tables { display: flex; flex-wrap: wrap; gap: 16px; }
details { margin: 4px 0; }
summary { cursor: pointer; }
pre { background: #f9fafb; border: 1px solid #e5e7eb; padding: 8px; overflow-x: auto;
      font: 12px/1.35 ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; }
code { font: 12px ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; }
dl.kv { display: grid; grid-template-columns: max-content auto; gap: 2px 12px; }
dl.kv dt { font-weight: 600; } dl.kv dd { margin: 0; }
footer { color: #9ca3af; margin-top: 32px; font-size: 12px; }
"""


class Raw(str):
    """Text that is already HTML (a link in a table cell): not escaped again."""


Cell = str | tuple[str, str]
"""A table cell: text (escaped unless :class:`Raw`), or (text, CSS class)."""


def page(title: str, body: Iterable[str], subtitle: str = "") -> str:
    """A complete HTML document around the ``body`` fragments (already HTML)."""
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en">',
        "<head>",
        '<meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        # forbid every fetch: the page must stand alone (and the browser tests hold it to it)
        '<meta http-equiv="Content-Security-Policy" content="default-src \'none\'; '
        "style-src 'unsafe-inline'; img-src data:\">",
        f"<title>{escape(title)}</title>",
        f"<style>{STYLE}</style>",
        "</head>",
        "<body>",
        f"<h1>{escape(title)}</h1>",
    ]
    if subtitle:
        parts.append(f'<p class="sub">{escape(subtitle)}</p>')
    parts += list(body)
    parts += ["<footer>made by ndis-offload</footer>", "</body>", "</html>", ""]
    return "\n".join(parts)


def section(heading: str, *content: str, anchor: str = "") -> str:
    """An ``<h2>`` and its content."""
    ident = f' id="{escape(anchor)}"' if anchor else ""
    return f"<section{ident}><h2>{escape(heading)}</h2>\n" + "\n".join(content) + "</section>"


def figure(svg: str) -> str:
    """An inline SVG in a scrolling frame."""
    return f'<div class="figure">{svg}</div>'


def _cell(tag: str, cell: Cell) -> str:
    if isinstance(cell, tuple):
        text, css = cell
        return f'<{tag} class="{escape(css)}">{escape(text)}</{tag}>'
    return f"<{tag}>{cell if isinstance(cell, Raw) else escape(cell)}</{tag}>"


def table(headers: Sequence[str], rows: Iterable[Sequence[Cell]], caption: str = "") -> str:
    """A plain table; cells are escaped."""
    out = ["<table>"]
    if caption:
        out.append(f"<caption>{escape(caption)}</caption>")
    out.append("<thead><tr>" + "".join(_cell("th", h) for h in headers) + "</tr></thead>")
    out.append("<tbody>")
    for row in rows:
        out.append("<tr>" + "".join(_cell("td", c) for c in row) + "</tr>")
    out.append("</tbody></table>")
    return "\n".join(out)


def details(summary: str, inner: str, *, css: str = "", opened: bool = False) -> str:
    """A collapsible block: ``summary`` is text, ``inner`` is HTML."""
    attrs = (f' class="{escape(css)}"' if css else "") + (" open" if opened else "")
    return f"<details{attrs}><summary>{escape(summary)}</summary>\n{inner}\n</details>"


def pre_json(value: Any, ident: str = "") -> str:
    """``value`` as indented JSON in a ``<pre>`` (with an ``id`` to link to, if given)."""
    attrs = f' id="{escape(ident)}"' if ident else ""
    return f"<pre{attrs}>{escape(json.dumps(value, indent=1))}</pre>"


def key_values(pairs: Iterable[tuple[str, str]]) -> str:
    """A definition list of (name, text) pairs."""
    inner = "".join(f"<dt>{escape(k)}</dt><dd>{escape(v)}</dd>" for k, v in pairs)
    return f'<dl class="kv">{inner}</dl>'


def link(url: str, text: str = "") -> str:
    """An external link (the page loads nothing from it)."""
    return f'<a href="{escape(url)}" rel="noreferrer">{escape(text or url)}</a>'
