"""The ``--svg`` / ``--mermaid`` / ``--html`` options: registration, and writing the pictures
atomically (:func:`~ndis_offload.io.atomic.atomic_output`: a failed or interrupted write
leaves no file, and never half a file)."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from rich.console import Console
from rich.markup import escape

from ndis_offload.errors import BackendError
from ndis_offload.io.atomic import atomic_output

Render = Callable[[], str]

KINDS = ("svg", "mermaid", "html")

SEQUENCE_PICTURES = {
    "svg": "write the sequence diagram (lanes: protocols, NDIS, filters, miniport) as SVG",
    "mermaid": "write the sequence diagram as a Mermaid sequenceDiagram (Markdown, GitHub)",
    "html": "write a self-contained HTML report: diagram, configuration before/after, trace",
}
"""Help texts of the options of the commands that drive a stack (``demo``, ``run``)."""

CONFORMANCE_PICTURES = {
    "svg": "write the matrix (miniports x checks, cells coloured by status) as SVG",
    "mermaid": "write each failure (sent, seen, expected) as a Mermaid sequenceDiagram",
    "html": "write a self-contained HTML report: the matrix, every failure opening to what "
    "was sent, expected and seen, with its documentation page",
}


@dataclass(frozen=True)
class Pictures:
    """What a command can draw; each is rendered only when its option is given."""

    svg: Render | None = None
    mermaid: Render | None = None
    html: Render | None = None


CAPTURE_PICTURES = {
    "svg": "write the charts (frame sizes, per-flow throughput, offload artifacts over time) "
    "as one SVG; the sizes after RSC run the coalescer over every frame, as pcap coalesce does",
    "html": "write a self-contained HTML report: the charts, the summary and the per-flow table",
}


def add_picture_options(
    parser: argparse.ArgumentParser,
    *,
    svg: str | None = None,
    mermaid: str | None = None,
    html: str | None = None,
) -> None:
    """Add ``--svg FILE`` / ``--mermaid FILE`` / ``--html FILE``, each given its help text."""
    for kind, text in (("svg", svg), ("mermaid", mermaid), ("html", html)):
        if text is not None:
            parser.add_argument(f"--{kind}", metavar="FILE", help=text)


def write_text(path: str | Path, text: str) -> None:
    """Write ``text`` (UTF-8) to ``path`` atomically."""
    with atomic_output(path) as out:
        out.write(text.encode("utf-8"))


def save_pictures(console: Console, args: argparse.Namespace, pictures: Pictures) -> None:
    """Write every picture asked for on the command line (a file that cannot be written
    raises :class:`BackendError` naming it). ``wrote FILE`` goes to ``console``: pass the
    error console, so stdout stays what ``--json`` promises."""
    for kind in KINDS:
        path = getattr(args, kind, None)
        render = getattr(pictures, kind)
        if not path or render is None:
            continue
        try:
            write_text(path, render())
        except OSError as err:
            raise BackendError(f"cannot write {path}: {err.strerror or err}") from err
        console.print(f"wrote {escape(str(path))}", highlight=False)
