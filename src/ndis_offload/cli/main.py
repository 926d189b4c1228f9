"""The ``ndis-offload`` command: parse arguments, call the public API, render with rich.

One error boundary (:func:`main`) turns every failure into one line on stderr and an exit
code (``cli/errors.py``); :func:`entry` adds what only a real process has: signals and a
closed stdout.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
from collections.abc import Callable, Sequence
from types import FrameType
from typing import NoReturn, cast

from rich.console import Console

from ndis_offload import __version__
from ndis_offload.cli import caps, conformance, demo, oid, pcap, rss, run, spec, tap, wire
from ndis_offload.cli.errors import (
    EXIT_SIGINT,
    EXIT_SIGPIPE,
    CliError,
    Terminated,
    make_console,
    report_error,
)
from ndis_offload.errors import NdisError

SubcommandAdder = Callable[["argparse._SubParsersAction[argparse.ArgumentParser]"], None]

SUBCOMMANDS: tuple[SubcommandAdder, ...] = (
    demo.add_parser,
    caps.add_parser,
    run.add_parser,
    conformance.add_parser,
    spec.add_parser,
    pcap.add_parser,
    rss.add_parser,
    tap.add_parser,
    wire.add_parser,
    oid.add_parser,
)
"""Every subcommand's parser builder, in help order (an explicit registry)."""


class Parser(argparse.ArgumentParser):
    """argparse with usage errors raised as :class:`CliError` (so ``--json`` sees them too);
    subcommand parsers inherit the class."""

    def error(self, message: str) -> NoReturn:
        raise CliError(message, usage=self.format_usage(), prog=self.prog)


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(
        prog="ndis-offload",
        description="Windows NDIS 6.x task offload, executable.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = cast(
        "argparse._SubParsersAction[argparse.ArgumentParser]",
        parser.add_subparsers(dest="command", metavar="COMMAND"),
    )
    sub.required = True
    for add in SUBCOMMANDS:
        add(sub)
    return parser


def _as_cli_error(error: BaseException) -> CliError | None:
    """The report for an exception that means bad input or usage (``None``: a real bug)."""
    if isinstance(error, CliError):
        return error
    if isinstance(error, NdisError):
        return CliError(error.detail)
    if isinstance(error, RecursionError):
        return CliError("input nested too deeply to process")
    if isinstance(error, OSError) and not isinstance(error, BrokenPipeError):
        where = f"{error.filename}: " if error.filename is not None else ""
        return CliError(f"{where}{error.strerror or error}")
    return None


def main(
    argv: Sequence[str] | None = None,
    console: Console | None = None,
    error_console: Console | None = None,
) -> int:
    """Run the CLI; return the exit code (tests call this directly).

    Errors go to ``error_console`` (default: stderr, or ``console`` when a test passes one).
    """
    args_list = list(sys.argv[1:] if argv is None else argv)
    out = console if console is not None else make_console()
    err = error_console or (out if console is not None else make_console(stderr=True))
    as_json = "--json" in args_list
    try:
        try:
            args = build_parser().parse_args(args_list)
        except SystemExit as exc:  # --help, --version
            return int(exc.code or 0)
        as_json = bool(getattr(args, "json", False))
        args.error_console = err
        code: int = args.run(args, out)
        return code
    except (KeyboardInterrupt, Terminated) as exc:  # temporary files are gone by now
        signum = exc.signum if isinstance(exc, Terminated) else signal.SIGINT
        err.print(f"ndis-offload: interrupted ({signal.Signals(signum).name})", highlight=False)
        return 128 + signum
    except (CliError, NdisError, RecursionError, OSError) as error:
        report = _as_cli_error(error)
        if report is None:
            raise
        return report_error(err, out, report, as_json=as_json)


_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


def _terminate(signum: int, frame: FrameType | None) -> None:
    """Raise in the main thread; later signals are ignored so cleanup runs to its end."""
    del frame
    for other in _SIGNALS:
        signal.signal(other, signal.SIG_IGN)
    if signum == signal.SIGINT:
        raise KeyboardInterrupt
    raise Terminated(signum)


def entry() -> None:
    """Console-script entry point: SIGINT / SIGTERM / SIGHUP unwind (removing temporary
    files) and exit 130 / 143 / 129; a closed pipe (``| head``) ends quietly with 141."""
    for signum in _SIGNALS:
        if signal.getsignal(signum) is not signal.SIG_IGN:  # nohup keeps SIGHUP ignored
            signal.signal(signum, _terminate)
    try:
        code = main()
        sys.stdout.flush()
    except BrokenPipeError:
        code = EXIT_SIGPIPE
    except KeyboardInterrupt:  # a second one, while reporting the first
        code = EXIT_SIGINT
    except Terminated as exc:
        code = 128 + exc.signum
    if code == EXIT_SIGPIPE:
        # the reader went away: silence the interpreter's own flush at exit
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    sys.exit(code)


if __name__ == "__main__":
    entry()
