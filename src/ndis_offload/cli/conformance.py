"""``ndis-offload conformance``: the documented rules as a battery against miniport models."""

from __future__ import annotations

import argparse
import importlib
import json
from typing import cast

from rich.console import Console
from rich.table import Table

from ndis_offload.cli.errors import CliError, safe
from ndis_offload.lab.conformance import CHECKS, CheckResult, MiniportFactory, run_battery
from ndis_offload.lab.variants import VARIANTS, make_miniport
from ndis_offload.stack.miniport import Miniport
from ndis_offload.stack.profiles import AdapterProfile


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "conformance",
        help="run the documented offload rules against miniport models",
        description="Runs every documented OID_OFFLOAD_ENCAPSULATION / "
        "OID_TCP_OFFLOAD_PARAMETERS rule against the chosen miniports (default: the "
        "reference). Exit 1 when any check fails.",
    )
    p.add_argument("--variant", action="append", default=[], metavar="NAME",
                   help=f"a built-in variant ({', '.join(VARIANTS)}); repeatable")  # fmt: skip
    p.add_argument("--all", action="store_true", help="every built-in variant")
    p.add_argument(
        "--miniport",
        action="append",
        default=[],
        metavar="MODULE:CLASS",
        help="your own Miniport subclass, built as CLASS(profile); repeatable",
    )
    p.add_argument("--json", action="store_true", help="one JSON object for machines")
    p.set_defaults(run=run)


def load_miniport(spec: str) -> MiniportFactory:
    """``module:Class`` -> a factory ``profile -> Class(profile)``."""
    module_name, _, class_name = spec.partition(":")
    if not module_name or not class_name:
        raise ValueError(f"--miniport wants MODULE:CLASS, got {spec!r}")
    try:
        cls = getattr(importlib.import_module(module_name), class_name)
    except (ImportError, AttributeError) as err:
        raise ValueError(f"cannot load {spec}: {err}") from err
    if not (isinstance(cls, type) and issubclass(cls, Miniport)):
        raise ValueError(f"{spec} is not a Miniport subclass")

    return cast(MiniportFactory, cls)


def _variant_factory(name: str) -> MiniportFactory:
    def factory(profile: AdapterProfile) -> Miniport:
        return make_miniport(name, profile)

    return factory


def run(args: argparse.Namespace, console: Console) -> int:
    targets: dict[str, MiniportFactory] = {}
    names = (
        list(VARIANTS) if args.all else (args.variant or ([] if args.miniport else ["reference"]))
    )
    for name in names:
        if name not in VARIANTS:
            raise CliError(f"unknown variant {name!r}; known: {', '.join(VARIANTS)}")
        targets[name] = _variant_factory(name)
    for spec in args.miniport:
        try:
            targets[spec] = load_miniport(spec)
        except ValueError as err:
            raise CliError(str(err)) from err
    results = {name: run_battery(factory) for name, factory in targets.items()}
    failed = any(not r.passed for rs in results.values() for r in rs)
    if args.json:
        console.file.write(json.dumps({
            name: [r.__dict__ for r in rs] for name, rs in results.items()
        }, indent=1) + "\n")  # fmt: skip
        return 1 if failed else 0
    _render(console, results)
    return 1 if failed else 0


def _render(console: Console, results: dict[str, list[CheckResult]]) -> None:
    matrix = Table(title="Conformance to the documented task offload rules")
    matrix.add_column("check")
    for name in results:
        matrix.add_column(safe(name), justify="center")
    for index in range(len(CHECKS)):
        first = next(iter(results.values()))[index]
        marks = ["[green]pass[/green]" if rs[index].passed else "[red]FAIL[/red]"
                 for rs in results.values()]  # fmt: skip
        matrix.add_row(first.name, *marks)
    console.print(matrix)
    details = Table(title="Where a miniport differs from the documentation")
    details.add_column("miniport")
    details.add_column("check")
    details.add_column("expected")
    details.add_column("observed")
    for name, rs in results.items():
        for r in rs:
            if not r.passed:
                details.add_row(safe(name), safe(r.name), safe(r.expected), safe(r.observed))
    if details.row_count:
        console.print(details)
    for name, rs in results.items():
        passed = sum(r.passed for r in rs)
        console.print(f"{safe(name)}: {passed}/{len(rs)} checks pass", highlight=False)
