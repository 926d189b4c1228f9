"""``ndis-offload spec``: the constants and structure layouts, as tables or JSON."""

from __future__ import annotations

import argparse
import json
from typing import Any

from rich.console import Console
from rich.table import Table

from ndis_offload.cli.errors import CliError, emit
from ndis_offload.structs import STRUCTS
from ndis_offload.structs.describe import describe


def add_arguments(p: argparse.ArgumentParser) -> None:
    """The ``spec`` subcommand's arguments (its name and help are in ``cli/main.py``)."""
    p.add_argument("--json", action="store_true", help="one JSON object for machines")
    p.add_argument("--struct", metavar="NAME", help="only this structure (C name)")
    p.set_defaults(run=run)


def _only(description: dict[str, Any], name: str) -> dict[str, Any]:
    """``description`` narrowed to structure ``name`` (its size, offsets, bits, revisions)."""
    prefix = name + "."
    return {
        "sizeof": {name: description["sizeof"][name]},
        "offsetof": {k: v for k, v in description["offsetof"].items() if k.startswith(prefix)},
        "bits": {k: v for k, v in description["bits"].items() if k.startswith(prefix)},
        "revisions": {k: v for k, v in description["revisions"].items() if k == name},
    }


def run(args: argparse.Namespace, console: Console) -> int:
    wanted = [c for c in STRUCTS if args.struct in (None, c.C_NAME)]
    if args.struct is not None and not wanted:
        known = ", ".join(str(c.C_NAME) for c in STRUCTS)
        raise CliError(f"unknown structure {args.struct!r}; known: {known}")
    if args.json:
        description = describe()
        if args.struct is not None:
            description = _only(description, args.struct)
        emit(console, json.dumps(description, indent=1, sort_keys=True) + "\n")
        return 0
    if not args.struct:
        table = Table(title="Constants", show_lines=False)
        table.add_column("name")
        table.add_column("value", justify="right")
        table.add_column("hex", justify="right")
        for name, value in describe()["constants"].items():
            table.add_row(name, str(value), f"0x{value:X}")
        console.print(table)
    for cls in wanted:
        layout = cls.layout()
        title = f"{cls.C_NAME}  (sizeof {layout.size}"
        if cls.REVISION_SIZES:
            sizes = ", ".join(f"rev {r}: {s}" for r, s in cls.REVISION_SIZES.items())
            title += f"; {sizes}"
        table = Table(title=title + ")")
        table.add_column("offset", justify="right")
        table.add_column("field")
        table.add_column("type")
        table.add_column("bits", justify="right")
        table.add_column("since rev", justify="right")
        for leaf in layout.leaves:
            bits = (
                f"{leaf.bit_offset}..{leaf.bit_offset + leaf.bit_width - 1}"
                if leaf.bit_offset is not None and leaf.bit_width is not None
                else ""
            )
            table.add_row(
                str(leaf.offset),
                leaf.path,
                leaf.ctype.name,
                bits,
                str(leaf.since) if cls.REVISION_SIZES else "",
            )
        for name, view_cls in layout.views:
            for path, byte_offset, bit_offset, width in view_cls.layout().bit_fields():
                table.add_row(
                    str(byte_offset),
                    f"{name}.{path}",
                    "ULONG",
                    f"{bit_offset}..{bit_offset + width - 1}",
                    "",
                )
            for leaf in view_cls.layout().leaves:
                if leaf.bit_offset is None:
                    table.add_row(str(leaf.offset), f"{name}.{leaf.path}", leaf.ctype.name, "", "")
        console.print(table)
    return 0
