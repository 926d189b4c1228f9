"""The ``ndis-offload`` command: parse arguments, call the public API, render with rich.

One error boundary (:func:`main`) turns every failure into one line on stderr and an exit
code (``cli/errors.py``); :func:`entry` adds what only a real process has: signals and a
closed stdout.
"""

from __future__ import annotations

import argparse
import importlib
import os
import signal
import sys
from collections.abc import Sequence
from types import FrameType
from typing import NoReturn, cast

from rich.console import Console

from ndis_offload import __version__
from ndis_offload.cli.errors import (
    EXIT_SIGINT,
    EXIT_SIGPIPE,
    CliError,
    Terminated,
    make_console,
    report_error,
)
from ndis_offload.errors import NdisError

SUBCOMMANDS: dict[str, str] = {
    "demo": "watch protocols check support, enable and disable task offload (in memory)",
    "caps": "hardware offload capabilities beside the current configuration (ethtool -k)",
    "run": "run a scenario file (adapter, filters, steps) against the in-memory stack",
    "conformance": "run the documented offload rules against miniports",
    "spec": "print NDIS constants and structure layouts",
    "pcap": "verify / fix / segment / coalesce / stats on captures",
    "rss": "NDIS Toeplitz RSS hash and queue of a 5-tuple or a capture",
    "tap": "a TAP NIC bound to a software miniport (root)",
    "wire": "two namespaces joined by TAP NICs whose offloads follow the NDIS model (root)",
    "oid": "OID requests / caps / live stats of a running wire or tap",
}
"""Every subcommand and its one-line help, in help order (an explicit registry). The
arguments come from ``add_arguments`` in ``ndis_offload.cli.<name>``, imported only for the
subcommand being run, so a ``pcap`` command does not load the NDIS model."""


class Parser(argparse.ArgumentParser):
    """argparse with usage errors raised as :class:`CliError` (so ``--json`` sees them too);
    subcommand parsers inherit the class."""

    def error(self, message: str) -> NoReturn:
        raise CliError(message, usage=self.format_usage(), prog=self.prog)


def _command(argv: Sequence[str]) -> str | None:
    """The subcommand named in ``argv``: its first word not starting with ``-`` (the top
    level has only ``--help`` and ``--version``, which take no value)."""
    return next((a for a in argv if not a.startswith("-")), None)


def build_parser(argv: Sequence[str] | None = None) -> argparse.ArgumentParser:
    """The whole parser; with ``argv``, only the subcommand it names gets its arguments (the
    others are listed with their help, as ``--help`` and a wrong name need)."""
    wanted = None if argv is None else _command(argv)
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
    for name, text in SUBCOMMANDS.items():
        p = sub.add_parser(name, help=text)
        if argv is None or name == wanted:
            module = importlib.import_module(f"ndis_offload.cli.{name}")
            module.add_arguments(p)
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
            args = build_parser(args_list).parse_args(args_list)
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
