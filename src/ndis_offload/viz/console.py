"""Console helpers shared by the CLI renderers.

On a terminal, rich lays tables out to the window. Anywhere else (``| cat``, a file, a CI log)
there is no window to fit, and fitting 80 columns would cut cells to ``NDIS_STATUS_INVALI…``:
:data:`PIPE_WIDTH` is the width the CLI gives such output (``cli.errors.make_console``): wider
than any table, so every cell is whole.
"""

from __future__ import annotations

import json
from typing import Any

from rich.console import Console
from rich.rule import Rule

PIPE_WIDTH = 4096
"""Columns for output that is not a terminal: wider than any table the CLI prints."""

RULE_WIDTH = 100
"""Headings (rules) never stretch past this, whatever the console width."""


def heading(console: Console, title: str) -> None:
    """A rule with ``title`` (rich markup), at most :data:`RULE_WIDTH` wide."""
    console.print(Rule(title), width=min(console.width, RULE_WIDTH))


def write_json(console: Console, value: Any, *, indent: int | None = None) -> None:
    """One JSON document (or line), written raw so rich does not reflow it."""
    console.file.write(json.dumps(value, indent=indent) + "\n")
