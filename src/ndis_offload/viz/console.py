"""Console helpers shared by the CLI renderers."""

from __future__ import annotations

import json
import sys
from typing import Any

from rich.console import Console
from rich.markup import escape


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
