"""The ``ndis-offload`` command: parse arguments, call the public API, render with rich."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Sequence

from rich.console import Console

from ndis_offload import __version__
from ndis_offload.cli import caps, conformance, demo, pcap, rss, run, spec

SubcommandAdder = Callable[["argparse._SubParsersAction[argparse.ArgumentParser]"], None]

SUBCOMMANDS: tuple[SubcommandAdder, ...] = (
    demo.add_parser,
    caps.add_parser,
    run.add_parser,
    conformance.add_parser,
    spec.add_parser,
    pcap.add_parser,
    rss.add_parser,
)
"""Every subcommand's parser builder, in help order (an explicit registry)."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ndis-offload",
        description="Windows NDIS 6.x task offload, executable.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for add in SUBCOMMANDS:
        add(sub)
    return parser


def main(argv: Sequence[str] | None = None, console: Console | None = None) -> int:
    """Run the CLI; return the exit code (tests call this directly)."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse exits 2 on usage errors, 0 on --help
        return int(exc.code or 0)
    out = console if console is not None else Console(soft_wrap=True)
    code: int = args.run(args, out)
    return code


def entry() -> None:
    """Console-script entry point: a closed pipe (``| head``) ends quietly, Ctrl-C is 130."""
    try:
        code = main()
        sys.stdout.flush()
    except BrokenPipeError:
        # the reader went away: silence the interpreter's own flush at exit
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        code = 141
    except KeyboardInterrupt:
        code = 130
    sys.exit(code)
