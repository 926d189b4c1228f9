"""``conformance --json`` read the same way whatever the battery's JSON shape: a mapping of
miniport -> results (``passed``, ``observed``), or ``{"miniports": [{"target", "results"}]}``
with ``status`` and ``seen``."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

FAILED = ("fail", "error", "timeout")


@dataclass(frozen=True)
class Row:
    miniport: str
    name: str
    failed: bool
    expected: str
    seen: str


def rows(data: Any) -> list[Row]:
    if isinstance(data, dict) and "miniports" in data:
        pairs = [(m["target"], m["results"]) for m in data["miniports"]]
    else:
        pairs = list(data.items())
    out = []
    for miniport, results in pairs:
        for r in results:
            failed = r["status"] in FAILED if "status" in r else not r["passed"]
            seen = r.get("seen", r.get("observed", ""))
            out.append(Row(miniport, r["name"], failed, r.get("expected", ""), seen))
    return out


def miniports(data: Any) -> list[str]:
    return list(dict.fromkeys(r.miniport for r in rows(data)))
