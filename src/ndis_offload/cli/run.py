"""``ndis-offload run SCENARIO.json``: run a scenario file step by step."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from rich.console import Console
from rich.markup import escape

from ndis_offload.lab.scenario import ScenarioError, load_scenario
from ndis_offload.lab.scenario_run import run_step, start
from ndis_offload.viz.console import print_error, write_json
from ndis_offload.viz.tables import step_table


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "run",
        help="run a scenario file (adapter, filters, steps) against the in-memory stack",
    )
    p.add_argument("scenario", metavar="SCENARIO.json", help="scenario file ('-' not supported)")
    p.add_argument("--json", action="store_true", help="one JSON object per line per step")
    p.set_defaults(run=run)


def run(args: argparse.Namespace, console: Console) -> int:
    path = Path(args.scenario)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as err:
        print_error(console, f"cannot read scenario {str(path)!r}: {err.strerror or err}")
        return 2
    except UnicodeDecodeError as err:
        print_error(console, f"{path}: not UTF-8 text ({err.reason})")
        return 2
    try:
        data = json.loads(text)
    except json.JSONDecodeError as err:
        print_error(console, f"{path}: bad JSON at line {err.lineno} column {err.colno}: {err.msg}")
        return 2
    try:
        scenario = load_scenario(data)
    except ScenarioError as err:
        print_error(console, f"{path}: {err.detail}")
        return 2
    state = start(scenario)
    if not args.json:
        adapter = scenario.adapter
        filters = ", ".join(f.name for f in scenario.filters) or "none"
        console.print(
            f"[bold]{escape(path.name)}[/bold]: profile [cyan]{escape(adapter.profile.name)}"
            f"[/cyan], miniport [cyan]{escape(adapter.variant)}[/cyan], filters {escape(filters)}",
            highlight=False,
        )
    for step in scenario.steps:
        result = run_step(state, step).to_dict()
        if args.json:
            write_json(console, result)
        else:
            console.print(step_table(result))
    failed = [r for r in state.results if r.failures]
    if failed:
        if not args.json:
            console.print(
                f"[bold red]{len(failed)} step(s) did not meet their expect[/bold red]: "
                + ", ".join(str(r.index) for r in failed)
            )
        return 1
    return 0
