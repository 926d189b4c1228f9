"""A :class:`~ndis_offload.viz.flow.Flow` as an SVG sequence diagram.

One lifeline per lane (protocols, NDIS, filters, miniport), one row per message: the label
(sequence number, what, status) above the arrow, the decoded payload as a note below it, and
the full payload JSON as the hover title (``<title>``) of the message. Requests and binds are
solid arrows, completions and pendings dashed, indications purple; colour says the status.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET

from ndis_offload.viz.flow import Flow, Message, payload_json
from ndis_offload.viz.svg import (
    TONES,
    arrow_markers,
    sub,
    svg_root,
    text_width,
    to_inline,
    to_string,
)

LABEL_SIZE = 11.0
NOTE_SIZE = 10.0
MARGIN = 16.0
HEAD_HEIGHT = 40.0
MIN_GAP, MAX_GAP = 150.0, 340.0
ROLE_TEXT = {"protocol": "protocol", "ndis": "NDIS library", "filter": "filter",
             "miniport": "miniport"}  # fmt: skip


def _centres(flow: Flow) -> tuple[list[float], float]:
    """Lifeline x positions and the header box width. Each gap between neighbouring
    lifelines grows (up to :data:`MAX_GAP`) until the labels of the messages spanning it fit
    over their arrows, shortest spans first; a longer label may still run past its arrow."""
    box = max([MIN_GAP - 16] + [text_width(lane.name, 12) + 16 for lane in flow.lanes])
    gaps = [max(MIN_GAP, box + 16)] * max(len(flow.lanes) - 1, 0)
    for m in sorted(flow.messages, key=lambda m: abs(m.target - m.source)):
        lo, hi = sorted((m.source, m.target))
        if hi == lo:
            continue
        deficit = text_width(_label(m), LABEL_SIZE) + 20 - sum(gaps[lo:hi])
        for i in range(lo, hi):
            if deficit > 0:
                gaps[i] = min(MAX_GAP, gaps[i] + deficit / (hi - lo))
    xs = [MARGIN + box / 2 + 8]
    for gap in gaps:
        xs.append(xs[-1] + gap)
    return xs, box


def _label(m: Message) -> str:
    return f"{m.seq}  {m.label}"


def _row_height(m: Message) -> float:
    return 44.0 if m.note else 32.0


def sequence_element(flow: Flow, title: str = "", *, link: str = "") -> ET.Element:
    """The diagram as an ``<svg>`` element. ``link``: each message becomes a link to
    ``#<link><seq>`` (the HTML report's trace entry for that event)."""
    xs, box = _centres(flow)
    notes = [text_width(m.note, NOTE_SIZE) for m in flow.messages]
    width = max(xs[-1] + box / 2 + 8 + MARGIN, *(n + 2 * MARGIN for n in notes or [0]))
    top = MARGIN + (24.0 if title else 0.0)
    body = sum(_row_height(m) for m in flow.messages)
    height = top + HEAD_HEIGHT + 16 + body + MARGIN
    root = svg_root(width, height, title or "NDIS OID sequence diagram")
    arrow_markers(root, TONES)
    if title:
        sub(root, "text", title, x=MARGIN, y=MARGIN + 12, font_size=13, font_weight="bold")
    lanes = sub(root, "g", class_="lanes")
    for x, lane in zip(xs, flow.lanes, strict=True):
        group = sub(lanes, "g", class_="lane")
        sub(group, "title", f"{ROLE_TEXT.get(lane.role, lane.role)}: {lane.name}")
        sub(group, "line", x1=x, y1=top + HEAD_HEIGHT, x2=x, y2=height - MARGIN,
            stroke=TONES["grid"], stroke_dasharray="4 3")  # fmt: skip
        fill = {"ndis": "#e0e7ff", "filter": "#fef3c7", "miniport": "#dcfce7"}.get(
            lane.role, "#f3f4f6"
        )
        sub(group, "rect", x=x - box / 2, y=top, width=box, height=HEAD_HEIGHT,
            rx=6, fill=fill, stroke="#9ca3af")  # fmt: skip
        sub(group, "text", lane.name, x=x, y=top + 17, text_anchor="middle", font_size=12,
            font_weight="bold")  # fmt: skip
        sub(group, "text", ROLE_TEXT.get(lane.role, lane.role), x=x, y=top + 32,
            text_anchor="middle", font_size=10, fill=TONES["muted"])  # fmt: skip
    y = top + HEAD_HEIGHT + 16
    messages = sub(root, "g", class_="messages")
    for m in flow.messages:
        parent = sub(messages, "a", href=f"#{link}{m.seq}") if link else messages
        _message(parent, m, xs, y, width)
        y += _row_height(m)
    return root


def _message(parent: ET.Element, m: Message, xs: list[float], y: float, width: float) -> None:
    colour = TONES.get(m.tone, TONES["call"])
    group = sub(parent, "g", class_=f"message {m.tone}")
    hover = _label(m) + (f"\n{m.note}" if m.note else "")
    if m.payload is not None:
        hover += "\n" + payload_json(m.payload)
    sub(group, "title", hover)
    x1, x2 = xs[m.source], xs[m.target]
    left, right = min(x1, x2), max(x1, x2)
    label = _label(m)
    label_x = _clamp((left + right) / 2, text_width(label, LABEL_SIZE), width)
    sub(group, "text", label, x=label_x, y=y + 11, text_anchor="middle", font_size=LABEL_SIZE,
        fill=colour, font_weight="bold" if m.tone == "fail" else "normal")  # fmt: skip
    line_y = y + 18
    dashed = m.tone in ("ok", "pending", "fail") and m.status != ""
    attrs: dict[str, str | float] = {"stroke": colour, "stroke_width": 1.6,
                                     "marker_end": f"url(#arrow-{m.tone})"}  # fmt: skip
    if dashed:
        attrs["stroke_dasharray"] = "6 3"
    # stop the line at the arrowhead's tip, just before the target lifeline
    tip = x2 - 2 if x2 > x1 else x2 + 2
    sub(group, "line", x1=x1, y1=line_y, x2=tip, y2=line_y, **attrs)
    if m.note:
        note_x = _clamp((left + right) / 2, text_width(m.note, NOTE_SIZE), width)
        sub(group, "text", m.note, x=note_x, y=line_y + 14, text_anchor="middle",
            font_size=NOTE_SIZE, fill=TONES["muted"])  # fmt: skip


def _clamp(center: float, text: float, width: float) -> float:
    """Keep a centred text of width ``text`` inside the picture."""
    half = text / 2
    return max(MARGIN + half, min(width - MARGIN - half, center))


def sequence_svg(flow: Flow, title: str = "") -> str:
    """A standalone ``.svg`` document."""
    return to_string(sequence_element(flow, title))


def sequence_inline(flow: Flow, title: str = "", *, link: str = "") -> str:
    """The ``<svg>`` element for an HTML page (see :func:`sequence_element` for ``link``)."""
    return to_inline(sequence_element(flow, title, link=link))
