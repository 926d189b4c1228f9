"""``ndis-offload conformance``: the documented rules as a battery against miniports."""

from __future__ import annotations

import argparse
import importlib
import math
import os
import sys
from typing import cast

from rich.console import Console
from rich.table import Table
from rich.text import Text

from ndis_offload.cli.errors import CliError, error_console
from ndis_offload.io.atomic import atomic_output
from ndis_offload.io.conformance import DEFAULT_TIMEOUT, Target, run_isolated
from ndis_offload.lab.conformance import CHECKS, Check, MiniportFactory, MiniportReport, Status
from ndis_offload.lab.conformance.check import select
from ndis_offload.lab.conformance.junit import to_junit
from ndis_offload.lab.variants import VARIANTS, make_miniport
from ndis_offload.stack.miniport import Miniport
from ndis_offload.stack.profiles import AdapterProfile
from ndis_offload.viz.console import write_json
from ndis_offload.viz.outputs import CONFORMANCE_PICTURES, add_picture_options, save_pictures
from ndis_offload.viz.report_conformance import conformance_pictures

MARK = {Status.PASS: "[green]pass[/]", Status.FAIL: "[red]FAIL[/]", Status.ERROR: "[red]ERROR[/]",
        Status.TIMEOUT: "[red]TIMEOUT[/]", Status.SKIP: "[yellow]skip[/]"}  # fmt: skip


def _timeout(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
    if not math.isfinite(value) or not 0.1 <= value <= 3600:
        raise argparse.ArgumentTypeError(f"{text}: the time limit must be 0.1..3600 seconds")
    return value


def add_arguments(p: argparse.ArgumentParser) -> None:
    """The ``conformance`` subcommand's arguments (its name and help are in ``cli/main.py``)."""
    p.description = (
        f"Runs {len(CHECKS)} checks of the documented NDIS task offload rules "
        "(control path, checksum, LSO, USO, RSC, RSS) against the chosen miniports (default: "
        "the reference), observed from outside: completions, indications and traffic. Each "
        "miniport runs in a child process with a time limit per check. Exit 1 when any check "
        "fails."
    )
    p.add_argument("--variant", action="append", default=[], metavar="NAME",
                   help=f"a built-in variant ({', '.join(VARIANTS)}); repeatable")  # fmt: skip
    p.add_argument("--all", action="store_true", help="every built-in variant")
    p.add_argument("--miniport", action="append", default=[], metavar="MODULE:CLASS",
                   help="your own Miniport subclass, built as CLASS(profile)")  # fmt: skip
    p.add_argument(
        "--check",
        action="append",
        default=[],
        metavar="PREFIX",
        help="run only the checks whose name starts with PREFIX; repeatable",
    )
    p.add_argument("--list", action="store_true", help="list the checks and their pages")
    p.add_argument("--timeout", type=_timeout, default=DEFAULT_TIMEOUT, metavar="SECONDS",
                   help=f"time limit per check (default {DEFAULT_TIMEOUT:g})")  # fmt: skip
    p.add_argument("--seed", type=int, default=0, help="seed of the randomized checks")
    p.add_argument("--json", action="store_true", help="one JSON object for machines")
    p.add_argument("--junit", metavar="FILE", help="also write JUnit XML for CI systems")
    add_picture_options(p, **CONFORMANCE_PICTURES)
    p.set_defaults(run=run)


def load_miniport(spec: str) -> MiniportFactory:
    """``module:Class`` -> the class (``CLASS(profile)`` builds one). Runs in the child;
    the module is looked up on ``sys.path`` plus the working directory."""
    module_name, _, class_name = spec.partition(":")
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    cls = getattr(importlib.import_module(module_name), class_name)
    if not (isinstance(cls, type) and issubclass(cls, Miniport)):
        raise TypeError(f"{spec} is {cls!r}, not a Miniport subclass")
    return cast(MiniportFactory, cls)


def _variant(name: str) -> Target:
    def load() -> MiniportFactory:
        def factory(profile: AdapterProfile) -> Miniport:
            return make_miniport(name, profile)

        return factory

    return Target(name, load)


def _plugin(spec: str) -> Target:
    def load() -> MiniportFactory:
        return load_miniport(spec)

    return Target(spec, load)


def _spec_ok(spec: str) -> bool:
    module, sep, cls = spec.partition(":")
    return bool(sep and module and cls.isidentifier()
                and all(part.isidentifier() for part in module.split(".")))  # fmt: skip


def run(args: argparse.Namespace, console: Console) -> int:
    checks = select(CHECKS, args.check)
    if not checks:
        raise CliError(f"no check name starts with {', '.join(args.check)}")
    if args.list:
        return _list(console, checks, args.json)
    names = list(VARIANTS) if args.all else args.variant
    if not names and not args.miniport:
        names = ["reference"]
    targets = []
    for name in names:
        if name not in VARIANTS:
            raise CliError(f"unknown variant {name!r}; known: {', '.join(VARIANTS)}")
        targets.append(_variant(name))
    for spec in args.miniport:
        if not _spec_ok(spec):
            raise CliError(f"--miniport wants MODULE:CLASS (dotted module, class name), "
                           f"got {spec!r}")  # fmt: skip
        targets.append(_plugin(spec))
    reports = [run_isolated(t, checks, seed=args.seed, timeout=args.timeout) for t in targets]
    failed = any(r.failed for r in reports)
    if args.junit:
        try:
            with atomic_output(args.junit) as handle:
                handle.write(to_junit(reports).encode())
        except OSError as err:
            raise CliError(f"cannot write {args.junit}: {err.strerror or err}") from err
    save_pictures(error_console(args, console), args, conformance_pictures(reports))
    if args.json:
        write_json(console, {"checks": len(checks), "miniports": [r.to_dict() for r in reports]},
                   indent=1)  # fmt: skip
    else:
        _render(console, reports)
    return 1 if failed else 0


def _list(console: Console, checks: list[Check], as_json: bool) -> int:
    if as_json:
        rows = [{"name": c.name, "family": c.family.value, "page": c.page, "rule": c.rule,
                 "reading": c.reading} for c in checks]  # fmt: skip
        write_json(console, rows, indent=1)
        return 0
    table = Table(title=f"{len(checks)} checks")
    for column in ("check", "family", "rule", "page"):
        table.add_column(column, overflow="fold")
    for c in checks:
        table.add_row(c.name, c.family.value, Text(c.rule), Text(c.page))
    console.print(table)
    return 0


def _render(console: Console, reports: list[MiniportReport]) -> None:
    names = [r.name for r in reports[0].results] if reports else []
    for report in reports[1:]:
        names += [r.name for r in report.results if r.name not in names]
    matrix = Table(title="Conformance to the documented task offload rules")
    matrix.add_column("check")
    for report in reports:
        matrix.add_column(Text(report.target), justify="center")
    by_target = [{r.name: r for r in report.results} for report in reports]
    for name in names:
        marks = [MARK[t[name].status] if name in t else "-" for t in by_target]
        if len(reports) > 1 or any(m != MARK[Status.PASS] for m in marks):
            matrix.add_row(name, *marks)
    if matrix.row_count:
        console.print(matrix)
    for report in reports:
        for r in report.results:
            if not r.status.failed:
                continue
            console.print(Text.assemble((f"{report.target} ", "bold"), (r.name, "bold red"),
                                        f"  [{r.status.value}]"))  # fmt: skip
            for label, value in (("rule", r.rule), ("page", r.page), ("sent", r.sent),
                                 ("expected", r.expected), ("seen", r.seen),
                                 ("reading", r.reading)):  # fmt: skip
                if value:
                    console.print(Text(f"  {label}: {value}"), soft_wrap=True)
            if r.traceback:
                console.print(Text("  " + r.traceback.rstrip().replace("\n", "\n  ")))
    for report in reports:
        c = report.counts()
        total = len(report.results)
        console.print(Text(
            f"{report.target}: {c['pass']}/{total} checks pass"
            + "".join(f", {c[k]} {k}" for k in ("fail", "error", "timeout", "skip") if c[k])
        ))  # fmt: skip
