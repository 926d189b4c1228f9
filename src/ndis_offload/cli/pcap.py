"""``ndis-offload pcap``: verify | fix | segment | coalesce | stats on pcap / pcapng captures.

Frame numbers in messages are 1-based, as Wireshark shows them; offsets are file offsets.
Exit codes: 0 fine, 1 real errors found (wrong checksums, malformed frames) or anything
skipped with ``--keep-going``, 2 bad usage or input (see ``cli/errors.py``).
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich.console import Console
from rich.table import Table

from ndis_offload.capture.analyze import SIZE_BINS, Analyzer, Diagnosis, size_bin_labels
from ndis_offload.cli.errors import (
    EXIT_FOUND,
    EXIT_OK,
    CliError,
    emit,
    error_console,
    float_range,
    int_range,
    safe,
    warn,
)
from ndis_offload.errors import BackendError, PacketError
from ndis_offload.io import inputs as capture_inputs
from ndis_offload.io import local_fix, pcap_jobs
from ndis_offload.io.atomic import atomic_output
from ndis_offload.io.cluster import INSTALL_HINT, ClusterSpec, dask_available
from ndis_offload.io.memory import reuse_freed_memory
from ndis_offload.io.pcap_jobs import JobResult, Options
from ndis_offload.viz.outputs import CAPTURE_PICTURES, add_picture_options, save_pictures

if TYPE_CHECKING:  # imported where used: a plain verify / fix needs none of them
    import numpy as np
    import numpy.typing as npt

    from ndis_offload.capture.checks import Checks
    from ndis_offload.io.capture import Chunk
    from ndis_offload.io.coalesce import Steering

MTU_RANGE = (68, 65535)
"""IPv4's minimum MTU (RFC 791) to the largest IP datagram."""
PLOT_FORMATS = frozenset({"png", "svg", "pdf"})
INPUT_HELP = "a capture file, a directory of them or a quoted glob: many files are one job"
OUTPUT_HELP = "the output file; a directory (one output per input) when the input is many"
ERRORS_SHOWN = 50
"""Capture errors listed in text mode (``--json`` lists every one kept)."""


def add_arguments(p: argparse.ArgumentParser) -> None:
    """The ``pcap`` subcommand's arguments (its name and help are in ``cli/main.py``)."""
    tools = p.add_subparsers(dest="tool", metavar="TOOL")
    tools.required = True

    def common(t: argparse.ArgumentParser) -> None:
        t.add_argument("--keep-going", action="store_true", help="report bad frames, go on")
        t.add_argument("--quiet", "-q", action="store_true", help="no progress bar")
        t.add_argument("--mtu", type=int_range(*MTU_RANGE), default=1500,
                       help="IP MTU when no SYN names an MSS (68..65535)")  # fmt: skip
        scale = t.add_argument_group("scale-out (coalesce: with --queues; needs the dask extra)")
        scale.add_argument(
            "--workers", type=int_range(0, 1024), default=0, metavar="N",
            help="start a local Dask cluster of N worker processes",
        )  # fmt: skip
        scale.add_argument("--scheduler", metavar="ADDRESS", help="use this Dask scheduler")
        scale.add_argument("--scheduler-file", metavar="PATH", help="Dask scheduler file")
        scale.add_argument(
            "--work-dir", metavar="DIR",
            help="part files of segment / coalesce / --frames here (seen by every worker; "
            "default: next to the output)",
        )  # fmt: skip
        t.set_defaults(run=run)

    v = tools.add_parser("verify", help="check checksums; diagnose offload artifacts")
    v.add_argument("capture", help=INPUT_HELP)
    v.add_argument("--json", action="store_true", help="one JSON object for machines")
    v.add_argument("--flows", type=int_range(0, 1 << 20), default=20,
                   help="flows shown in the table")  # fmt: skip
    v.add_argument(
        "--frames", metavar="FILE.jsonl",
        help="also write one JSON object per frame (layers, checksum states, diagnosis)",
    )  # fmt: skip
    common(v)
    f = tools.add_parser("fix", help="complete checksums left for offload")
    f.add_argument("input", help=INPUT_HELP)
    f.add_argument("output", help=OUTPUT_HELP)
    f.add_argument("--all", action="store_true", help="also recompute wrong checksums")
    common(f)
    s = tools.add_parser("segment", help="cut LSO frames into wire-sized segments")
    s.add_argument("input", help=INPUT_HELP)
    s.add_argument("output", help=OUTPUT_HELP)
    s.add_argument("--mss", type=int_range(1, 65535),
                   help="MSS, 1..65535 (default: inferred from the flow)")  # fmt: skip
    common(s)
    c = tools.add_parser("coalesce", help="apply the NDIS RSC rules")
    c.add_argument("input")
    c.add_argument("output")
    c.add_argument("--timeout", type=float_range(0.0, 3600.0), default=0.0005,
                   help="SCU timeout in seconds, 0..3600")  # fmt: skip
    c.add_argument(
        "--queues", type=int_range(1, 1024), default=1, metavar="N",
        help="receive queues, 1..1024: frames steered by the NDIS RSS hash, each queue "
        "coalescing on its own (its own SCU limit); a cluster runs one queue per task",
    )  # fmt: skip
    c.add_argument("--table-size", type=int_range(1, 128), default=128,
                   help="RSS indirection table entries, a power of 2 up to 128")  # fmt: skip
    c.add_argument("--key", default="verification",
                   help="RSS secret key as hex, or 'verification' (the default key)")  # fmt: skip
    common(c)
    st = tools.add_parser("stats", help="frame sizes, flows, offload artifacts")
    st.add_argument("capture", help=INPUT_HELP)
    st.add_argument("--plot", metavar="FILE.png", help="size distribution before / after")
    st.add_argument("--json", action="store_true", help="one JSON object for machines")
    add_picture_options(st, **CAPTURE_PICTURES)
    common(st)


@contextmanager
def _progress(console: Console, paths: list[Path], quiet: bool) -> Iterator[pcap_jobs.Progress]:
    """One bar over every input: bytes done of the total, frames done and their rate. A
    cluster run reports finished pieces' bytes and their frames (counted by the workers);
    ``frames`` -1: no frame count, shown as a byte rate."""
    total = sum(p.stat().st_size for p in paths if p.exists()) or None
    if quiet or not console.is_terminal:
        yield lambda frames, nbytes: None
        return
    from rich.progress import (
        BarColumn,
        Progress,
        TaskProgressColumn,
        TextColumn,
        TimeElapsedColumn,
    )

    columns = (
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        TaskProgressColumn(),
        TextColumn("{task.fields[frames]}, {task.fields[rate]}"),
        TimeElapsedColumn(),
    )
    start = time.perf_counter()
    with Progress(*columns, console=console, transient=True) as bar:
        name = paths[0].name if len(paths) == 1 else f"{len(paths)} files"
        task = bar.add_task(name, total=total, frames="-", rate="-")

        def update(frames: int, nbytes: int) -> None:
            seconds = max(time.perf_counter() - start, 1e-9)
            if frames < 0:
                rate = f"{nbytes / seconds / 1e6:,.0f} MB/s"
                bar.update(task, completed=nbytes, frames=f"{nbytes / 1e6:,.0f} MB", rate=rate)
                return
            rate = f"{frames / seconds:,.0f} frames/s"
            bar.update(task, completed=nbytes, frames=f"{frames:,} frames", rate=rate)

        yield update


def _where(error: PacketError) -> str:
    frame = f"frame {error.frame_index + 1}" if error.frame_index is not None else "file"
    at = f" at offset {error.offset}" if error.offset is not None else ""
    return f"{frame}{at}: {error.reason}"


def _named(error: PacketError) -> str:
    """An error of a job's report: with its file's name when the job had many inputs."""
    if isinstance(error, capture_inputs.InputError):
        return f"{error.path}: {_where(error)}"
    return _where(error)


def run(args: argparse.Namespace, console: Console) -> int:
    reuse_freed_memory()  # chunk buffers: about a third less CPU (io/memory.py)
    source = args.capture if args.tool in ("verify", "stats") else args.input
    plot = getattr(args, "plot", None)
    if plot and Path(plot).suffix.lower().lstrip(".") not in PLOT_FORMATS:
        raise CliError(f"--plot {plot}: name a .png, .svg or .pdf file")
    pictures = getattr(args, "html", None) or getattr(args, "svg", None)
    recorder = None
    if pictures:
        from ndis_offload.viz.report_capture import CaptureRecorder

        recorder = CaptureRecorder()
    inputs = capture_inputs.expand_inputs(source)
    try:
        with _progress(console, inputs, args.quiet) as progress:
            observe = None if recorder is None else recorder.observe
            opts = Options(mtu=args.mtu, keep_going=args.keep_going, progress=progress,
                           observe=observe, diagnose=args.tool != "fix",
                           processes=local_fix.processes())  # fmt: skip
            result = _dispatch(args, opts, inputs)
    except PacketError as error:
        hint = "" if args.keep_going else " (--keep-going skips it and goes on)"
        where = error.path if isinstance(error, capture_inputs.InputError) else source
        raise CliError(f"{where}: {_where(error)}{hint}") from error
    name = Path(source).name
    if recorder:
        from ndis_offload.viz.report_capture import capture_pictures

        save_pictures(error_console(args, console), args, capture_pictures(name, result, recorder))
    return _report(args, console, result)


def _cluster(args: argparse.Namespace) -> ClusterSpec:
    spec = ClusterSpec(args.workers, args.scheduler, args.scheduler_file)
    if spec.distributed and not dask_available():
        raise BackendError(f"--workers / --scheduler need Dask: {INSTALL_HINT}")
    if spec.distributed and args.tool == "coalesce" and args.queues < 2:
        from ndis_offload.io.distributed import QUEUES_HINT

        raise BackendError(QUEUES_HINT)
    return spec


def _dispatch(args: argparse.Namespace, opts: Options, inputs: list[Path]) -> JobResult:
    spec = _cluster(args)
    source = args.capture if args.tool in ("verify", "stats") else args.input
    many = capture_inputs.names_many(source)  # a directory or glob: outputs into a directory
    if many or spec.distributed:
        return _scaled(args, opts, inputs, spec, many=many)
    one = inputs[0]  # a glob or directory may name a single file
    if args.tool == "verify" and args.frames:
        from ndis_offload.capture.report import frame_records

        with atomic_output(args.frames) as out:
            also = opts.observe

            def sink(chunk: Chunk, checks: Checks, diag: npt.NDArray[np.int8]) -> None:
                lines = (
                    json.dumps(r) + "\n" for r in frame_records(checks, diag, chunk.first_index)
                )
                out.write("".join(lines).encode())
                if also is not None:
                    also(chunk, checks, diag)

            return pcap_jobs.verify(one, replace(opts, observe=sink))
    if args.tool in ("verify", "stats"):
        return pcap_jobs.verify(one, opts)
    if args.tool == "fix":
        return pcap_jobs.fix(one, args.output, opts, everything=args.all)
    if args.tool == "segment":
        return pcap_jobs.segment(one, args.output, opts, mss=args.mss)
    from ndis_offload.io.coalesce import coalesce

    return coalesce(one, args.output, opts, timeout=args.timeout, steering=_steering(args))


def _steering(args: argparse.Namespace) -> Steering:
    """``pcap coalesce``'s receive queues (``--queues``, ``--table-size``, ``--key``)."""
    from ndis_offload.cli.rss import parse_key
    from ndis_offload.engine.rss import RssError
    from ndis_offload.io.coalesce import Steering

    try:
        return Steering(args.queues, args.table_size, parse_key(args.key))
    except (RssError, ValueError) as error:
        raise CliError(str(error)) from error


def _scaled(
    args: argparse.Namespace, opts: Options, inputs: list[Path], spec: ClusterSpec, many: bool
) -> JobResult:
    """Many inputs as one job (``many``: a directory or glob, outputs go into a directory),
    or a cluster run (``io/distributed.py``)."""
    from ndis_offload.io import distributed

    if args.tool in ("verify", "stats"):
        frames = getattr(args, "frames", None)
        return distributed.verify(inputs, spec, opts, frames=frames, work_dir=args.work_dir)
    if args.tool == "fix":
        return distributed.fix(inputs, args.output, spec, opts, everything=args.all,
                               work_dir=args.work_dir, into_dir=many)  # fmt: skip
    if args.tool == "segment":
        return distributed.segment(inputs, args.output, spec, opts, mss=args.mss,
                                   work_dir=args.work_dir, into_dir=many)  # fmt: skip
    if many:
        raise BackendError("pcap coalesce takes one input file")
    return distributed.coalesce(inputs[0], args.output, spec, opts, timeout=args.timeout,
                                steering=_steering(args), work_dir=args.work_dir)  # fmt: skip


def summary(result: JobResult) -> dict[str, Any]:
    """The machine-readable report (``--json``)."""
    a = result.analyzer
    return {
        "frames": a.frames,
        "bytes": result.total_bytes,
        "diagnosis": {d.label: a.totals[d] for d in Diagnosis},
        "errors": a.errors,
        "flows": [
            {
                "flow": s.key,
                "frames": s.frames,
                "bytes": s.bytes,
                **{d.label: s.counts[d] for d in Diagnosis if s.counts[d]},
            }
            for s in _top_flows(a, len(a.flows))
        ],  # fmt: skip
        "notable_frames": [
            {"frame": n.index + 1, "diagnosis": n.diagnosis.label, "detail": n.detail}
            for n in a.notable
        ],
        "frames_read": max(result.frames_in, a.frames),
        **_files(result),
        "capture_errors": [_named(e) for e in result.errors],
        "capture_error_count": result.error_count,
        "unsupported_linktypes": {str(k): v for k, v in result.unsupported.items()},
        "size_histogram": {
            "edges": list(SIZE_BINS),
            "captured": a.sizes_before.tolist(),
            "wire": a.sizes_after.tolist(),
        },
    }


def _files(result: JobResult) -> dict[str, Any]:
    """Many inputs: each file's first frame number (1-based) and frame count."""
    files = getattr(result, "files", [])
    if len(files) < 2:
        return {}
    return {"files": [{"path": p, "first_frame": first + 1, "frames": n} for p, first, n in files]}


def _top_flows(a: Analyzer, count: int) -> list[Any]:
    flows = sorted(a.flows.values(), key=lambda s: -s.bytes)[:count]
    if a.other_flows.frames:
        flows.append(a.other_flows)
    return flows


def _report(args: argparse.Namespace, console: Console, result: JobResult) -> int:
    a = result.analyzer
    err = error_console(args, console)
    for linktype, frames in sorted(result.unsupported.items()):
        warn(err, f"link type {linktype} is not supported: its {frames:,} frames were not checked")
    if getattr(args, "json", False):
        emit(console, json.dumps(summary(result), indent=1) + "\n")
    else:
        for error in result.errors[:ERRORS_SHOWN]:
            label = "skipped" if "skipped bytes" in error.reason else "bad frame"
            if isinstance(error, capture_inputs.InputError):
                label = "bad file, left out:"
            console.print(f"[yellow]{label}[/yellow] {safe(_named(error))}", highlight=False)
        if result.error_count > ERRORS_SHOWN:
            console.print(f"[yellow]... {result.error_count - ERRORS_SHOWN:,} more[/yellow]")
        _files_table(console, result)
        if args.tool == "verify":
            _verify_tables(console, a, args.flows)
        elif args.tool == "stats":
            _stats_tables(console, a)
        else:
            what = {"fix": "checksum fields completed", "segment": "frames cut",
                    "coalesce": "frames merged"}[args.tool]  # fmt: skip
            console.print(
                f"{safe(args.output)}: {result.frames_out:,} frames written, "
                f"{result.changed:,} {what} ({max(result.frames_in, a.frames):,} frames read)",
                highlight=False,
            )
    if args.tool == "stats" and args.plot:
        from ndis_offload.io.plot import save_size_plot

        save_size_plot(args.plot, SIZE_BINS, a.sizes_before, a.sizes_after)
    found = result.error_count or (a.errors and args.tool in ("verify", "stats"))
    return EXIT_FOUND if found else EXIT_OK


def _files_table(console: Console, result: JobResult) -> None:
    files = _files(result).get("files")
    if not files:
        return
    table = Table(title=f"{len(files)} input files, one job (frames numbered across them)")
    table.add_column("file")
    table.add_column("first frame", justify="right")
    table.add_column("frames", justify="right")
    for f in files:
        table.add_row(safe(f["path"]), f"{f['first_frame']:,}", f"{f['frames']:,}")
    console.print(table)


def _verify_tables(console: Console, a: Analyzer, flows: int) -> None:
    if a.notable:
        table = Table(title="Frames to look at (first 1000)")
        table.add_column("frame", justify="right")
        table.add_column("diagnosis")
        table.add_column("detail")
        for n in a.notable[:50]:
            style = "red" if n.diagnosis.is_error else "yellow"
            table.add_row(str(n.index + 1), f"[{style}]{n.diagnosis.label}[/{style}]", n.detail)
        console.print(table)
    flow_table = Table(title="Flows (by bytes)")
    flow_table.add_column("flow")
    flow_table.add_column("frames", justify="right")
    for d in Diagnosis:
        if any(s.counts[d] for s in a.flows.values()):
            flow_table.add_column(d.label, justify="right")
    shown = [d for d in Diagnosis if any(s.counts[d] for s in a.flows.values())]
    for s in _top_flows(a, flows):
        flow_table.add_row(safe(s.key), f"{s.frames:,}", *[f"{s.counts[d]:,}" for d in shown])
    if shown:
        console.print(flow_table)
    _summary_table(console, a)


def _summary_table(console: Console, a: Analyzer) -> None:
    table = Table(title=f"Summary: {a.frames:,} frames, {len(a.flows):,} flows")
    table.add_column("diagnosis")
    table.add_column("frames", justify="right")
    for d in Diagnosis:
        if a.totals[d]:
            style = "red" if d.is_error else ("yellow" if d != Diagnosis.CORRECT else "green")
            table.add_row(f"[{style}]{d.label}[/{style}]", f"{a.totals[d]:,}")
    console.print(table)
    if a.errors:
        console.print(f"[red]{a.errors:,} frames with real errors[/red]")


def _stats_tables(console: Console, a: Analyzer) -> None:
    table = Table(title="Frame sizes")
    table.add_column("bytes")
    table.add_column("captured", justify="right")
    table.add_column("on the wire", justify="right")
    for label, before, after in zip(
        size_bin_labels(), a.sizes_before.tolist(), a.sizes_after.tolist(), strict=True
    ):
        if before or after:
            table.add_row(label, f"{before:,}", f"{after:,}")
    console.print(table)
    _summary_table(console, a)
