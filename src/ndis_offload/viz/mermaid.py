"""A :class:`~ndis_offload.viz.flow.Flow` as a Mermaid ``sequenceDiagram`` (for Markdown
and GitHub, which render it in place).

Participants get generated ids (``p0``, ``ndis``, ``f0``, ``m``) with the lane names as
aliases; requests are solid arrows (``->>``), completions and pendings dotted (``-->>``), a
failed completion ends in a cross (``--x``), indications are async arrows (``-)``); each
decoded payload is a note over the lanes the message crosses.
"""

from __future__ import annotations

import json

from ndis_offload.viz.flow import Flow, Message

ARROWS = {"call": "->>", "ok": "-->>", "pending": "-->>", "fail": "--x", "indication": "-)"}

_ENTITIES = {"#": "#35;", ";": "#59;", "<": "#lt;", ">": "#gt;", "%": "#37;", "\n": " "}
"""Characters Mermaid would read as syntax, as its ``#code;`` entities (``#`` first)."""


def escape(text: str) -> str:
    """``text`` safe as a Mermaid message, alias or note."""
    return "".join(_ENTITIES.get(ch, ch) for ch in text)


def _ids(flow: Flow) -> list[str]:
    counters: dict[str, int] = {}
    out = []
    for lane in flow.lanes:
        if lane.role == "ndis":
            out.append("ndis")
        elif lane.role == "miniport":
            out.append("miniport")
        else:
            prefix = "p" if lane.role == "protocol" else "f"
            n = counters.get(prefix, 0)
            counters[prefix] = n + 1
            out.append(f"{prefix}{n}")
    return out


def to_mermaid(flow: Flow, title: str = "") -> str:
    """The diagram as Mermaid source text (ends with a newline)."""
    ids = _ids(flow)
    lines = ["sequenceDiagram"]
    if title:
        # front matter is YAML: a JSON string is a YAML string, whatever it holds
        lines.insert(0, f"---\ntitle: {json.dumps(title)}\n---")
    for ident, lane in zip(ids, flow.lanes, strict=True):
        alias = f"{lane.name} (filter)" if lane.role == "filter" else lane.name
        lines.append(f"    participant {ident} as {escape(alias)}")
    for m in flow.messages:
        lines.append(_message(m, ids))
        if m.note:
            lines.append(_note(m, ids))
    return "\n".join(lines) + "\n"


def _message(m: Message, ids: list[str]) -> str:
    arrow = ARROWS.get(m.tone, "->>")
    return f"    {ids[m.source]}{arrow}{ids[m.target]}: {m.seq} {escape(m.label)}"


def _note(m: Message, ids: list[str]) -> str:
    lo, hi = sorted((m.source, m.target))
    where = f"over {ids[lo]},{ids[hi]}" if lo != hi else f"right of {ids[lo]}"
    return f"    Note {where}: {escape(m.note)}"
