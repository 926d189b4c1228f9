"""Console helpers shared by the CLI renderers.

On a terminal, rich lays tables out to the window. Anywhere else (``| cat``, a file, a CI log)
there is no window to fit, and fitting 80 columns would cut cells to ``NDIS_STATUS_INVALI…``:
:func:`stdout_console` gives such output a width no table reaches, so every cell is whole.
"""

from __future__ import annotations

import json
import sys
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.rule import Rule

PIPE_WIDTH = 4096
"""Columns for output that is not a terminal: wider than any table the CLI prints."""

RULE_WIDTH = 100
"""Headings (rules) never stretch past this, whatever the console width."""


def stdout_console() -> Console:
    """The console the CLI prints to: the terminal's width on a terminal, otherwise
    :data:`PIPE_WIDTH` (``COLUMNS`` is ignored there: it would truncate)."""
    console = Console(soft_wrap=True)
    if console.is_terminal:
        return console
    return Console(soft_wrap=True, width=PIPE_WIDTH)


def heading(console: Console, title: str) -> None:
    """A rule with ``title`` (rich markup), at most :data:`RULE_WIDTH` wide."""
    console.print(Rule(title), width=min(console.width, RULE_WIDTH))


def error_console(console: Console) -> Console:
    """Where error messages go: stderr when ``console`` writes to the real stdout, else the
    same console (tests capture one console)."""
    if console.file is sys.stdout:
        return Console(stderr=True, soft_wrap=True)
    return console


def print_error(console: Console, message: str) -> None:
    """``error: message`` in red, never interpreted as markup."""
    error_console(console).print(
        f"[bold red]error:[/bold red] {escape(message)}", soft_wrap=True, highlight=False
    )


def write_json(console: Console, value: Any, *, indent: int | None = None) -> None:
    """One JSON document (or line), written raw so rich does not reflow it."""
    console.file.write(json.dumps(value, indent=indent) + "\n")
