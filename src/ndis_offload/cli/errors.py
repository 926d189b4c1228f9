"""The CLI's one error path: exit codes, error reports, safe printing, checked option numbers.

Every subcommand raises :class:`CliError` (or lets an :class:`~ndis_offload.errors.NdisError`
or ``OSError`` escape) and :func:`ndis_offload.cli.main.main` turns it into one line on stderr
(``ndis-offload: error: ...``) plus, with ``--json``, one JSON error object on stdout, and
exit code 2. Text that came from the input (protocol names, module specs, paths) goes through
:func:`safe` before rich prints it: no markup, no emoji codes, no raw control characters.
"""

from __future__ import annotations

import argparse
import json
import math
import re
from collections.abc import Callable
from typing import Any, NoReturn

from rich.console import Console
from rich.markup import escape
from rich.text import Text

from ndis_offload.viz.console import PIPE_WIDTH, emit

EXIT_OK = 0
EXIT_FOUND = 1
"""Errors found in the input, a check failed, or (``--keep-going``) something was skipped."""
EXIT_USAGE = 2
"""Bad usage or bad input (unreadable file, malformed structure, refused output)."""
EXIT_SIGHUP = 129
EXIT_SIGINT = 130
EXIT_SIGPIPE = 141
"""The reader of stdout went away (``| head``): stop quietly."""
EXIT_SIGTERM = 143
EXIT_CODES = frozenset(
    {EXIT_OK, EXIT_FOUND, EXIT_USAGE, EXIT_SIGHUP, EXIT_SIGINT, EXIT_SIGPIPE, EXIT_SIGTERM}
)
"""Every exit code the command documents (README, "Exit codes")."""


class CliError(Exception):
    """A usage or input error: reported as one line, exit :data:`EXIT_USAGE`."""

    def __init__(
        self, message: str, *, usage: str = "", code: int = EXIT_USAGE, prog: str = "ndis-offload"
    ) -> None:
        super().__init__(message)
        self.message = message
        self.usage = usage
        self.code = code
        self.prog = prog


_UNSAFE = re.compile("[\x00-\x1f\x7f-\x9f\u200b-\u200f\u2028-\u202e\u2066-\u2069\ufeff]")


def printable(text: object) -> str:
    """``text`` with control and bidi-override characters shown as ``\\xNN`` / ``\\uNNNN``."""

    def show(match: re.Match[str]) -> str:
        code = ord(match.group())
        return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"

    value = str(text)
    try:  # undecodable bytes in file names (surrogate escapes) as \xNN
        value = value.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
    except UnicodeEncodeError:
        value = value.encode("utf-8", "backslashreplace").decode("utf-8")
    return _UNSAFE.sub(show, value)


def safe(text: object) -> str:
    """``text`` for a rich markup string: markup escaped and control characters shown.

    Emoji codes (``:smile:``) are only replaced when a console prints with ``emoji=True``;
    the CLI's consoles are built with ``emoji=False`` (see :func:`make_console`).
    """
    return escape(printable(text))


def safe_tree(value: Any) -> Any:
    """Every string inside ``value`` (dicts, lists) made :func:`safe`, for text rendering."""
    if isinstance(value, str):
        return safe(value)
    if isinstance(value, dict):
        return {safe_tree(k): safe_tree(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [safe_tree(v) for v in value]
    return value


class Terminated(BaseException):
    """SIGTERM or SIGHUP arrived: unwind like Ctrl-C (temporary files are removed)."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum


def error_console(args: argparse.Namespace, console: Console) -> Console:
    """Where a subcommand prints warnings: the error console ``main`` chose (stderr)."""
    err = getattr(args, "error_console", None)
    return err if isinstance(err, Console) else console


class _Console(Console):
    """A closed pipe raises ``BrokenPipeError`` (rich's default exits 1, the code for
    "errors found"); :func:`ndis_offload.cli.main.entry` turns it into exit 141."""

    def on_broken_pipe(self) -> None:
        raise BrokenPipeError


def make_console(*, stderr: bool = False) -> Console:
    """A console for the real stdout / stderr: soft-wrapped, emoji codes never replaced; on
    anything but a terminal :data:`~ndis_offload.viz.console.PIPE_WIDTH` wide, so tables
    are never cut (``COLUMNS`` is ignored there: it would truncate)."""
    console = _Console(stderr=stderr, soft_wrap=True, emoji=False)
    if console.is_terminal:
        return console
    return _Console(stderr=stderr, soft_wrap=True, emoji=False, width=PIPE_WIDTH)


def report_error(err: Console, out: Console, error: CliError, *, as_json: bool) -> int:
    """Print ``error`` once on ``err`` (and as a JSON object on ``out`` when ``as_json``)."""
    if error.usage and not as_json:
        err.print(Text(error.usage.rstrip()), highlight=False, soft_wrap=True)
    line = Text(f"{printable(error.prog)}: error: ", style="bold red")
    line.append(printable(error.message))
    err.print(line, highlight=False, soft_wrap=True)
    if as_json:
        body = {"error": {"message": error.message, "exit_code": error.code}}
        out.file.write(json.dumps(body) + "\n")
        out.file.flush()
    return error.code


def warn(err: Console, message: str) -> None:
    """``ndis-offload: warning: message`` on the error console, never as markup."""
    line = Text("ndis-offload: warning: ", style="yellow")
    line.append(printable(message))
    err.print(line, highlight=False, soft_wrap=True)


# -- checked numbers ---------------------------------------------------------------------------


def int_range(lo: int, hi: int | None = None) -> Callable[[str], int]:
    """An argparse ``type``: an integer in ``lo..hi`` (``hi`` None: no upper bound)."""
    span = f"{lo}..{hi}" if hi is not None else f">= {lo}"

    def parse(text: str) -> int:
        try:
            value = int(text, 0)
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"{text!r} is not an integer (valid: {span})"
            ) from None
        if value < lo or (hi is not None and value > hi):
            raise argparse.ArgumentTypeError(f"{value} is out of range (valid: {span})")
        return value

    parse.__name__ = "integer"
    return parse


def float_range(lo: float, hi: float, *, lo_open: bool = False) -> Callable[[str], float]:
    """An argparse ``type``: a finite number in ``lo..hi`` (``lo_open``: ``lo`` excluded)."""
    span = f"{'(' if lo_open else '['}{lo:g}, {hi:g}]"

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a number (valid: {span})") from None
        if not math.isfinite(value) or value < lo or value > hi or (lo_open and value == lo):
            raise argparse.ArgumentTypeError(f"{text} is out of range (valid: {span})")
        return value

    parse.__name__ = "number"
    return parse


def fail(message: str) -> NoReturn:
    """Raise a :class:`CliError` (exit 2) with ``message``."""
    raise CliError(message)


__all__ = [
    "EXIT_CODES",
    "EXIT_FOUND",
    "EXIT_OK",
    "EXIT_SIGHUP",
    "EXIT_SIGINT",
    "EXIT_SIGPIPE",
    "EXIT_SIGTERM",
    "EXIT_USAGE",
    "CliError",
    "Terminated",
    "emit",
    "error_console",
    "fail",
    "float_range",
    "int_range",
    "make_console",
    "printable",
    "report_error",
    "safe",
    "safe_tree",
    "warn",
]
