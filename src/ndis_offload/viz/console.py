"""Console helpers shared by the CLI renderers.

On a terminal, rich lays tables out to the window. Anywhere else (``| cat``, a file, a CI log)
there is no window to fit, and fitting 80 columns would cut cells to ``NDIS_STATUS_INVALI…``:
:data:`PIPE_WIDTH` is the width the CLI gives such output (``cli.errors.make_console``): wider
than any table, so every cell is whole.
"""

from __future__ import annotations

import json
import os
import sys
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


def emit(console: Console, text: str) -> None:
    """Write ``text`` raw (JSON documents) to the console's file.

    On the real stdout the bytes go out through ``os.write`` until every one is written: a
    buffered write of more than a pipe holds can otherwise lose its tail silently when the
    reader goes away mid-write, and exit 0 / 1 as if all was well; here the next write
    raises ``BrokenPipeError`` (exit 141).
    """
    handle = console.file
    if handle is not sys.stdout:
        handle.write(text)
        return
    handle.flush()
    data = memoryview(text.encode(handle.encoding or "utf-8", "backslashreplace"))
    fd = handle.fileno()
    while data:
        data = data[os.write(fd, data) :]


def write_json(console: Console, value: Any, *, indent: int | None = None) -> None:
    """One JSON document (or line), written raw (:func:`emit`) so rich does not reflow it
    and a closed pipe loses nothing silently."""
    emit(console, json.dumps(value, indent=indent) + "\n")
