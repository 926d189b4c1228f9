"""``ndis-offload run SCENARIO.json``: run a scenario file step by step."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from rich.console import Console

from ndis_offload.cli.errors import EXIT_FOUND, EXIT_OK, CliError, error_console, safe, safe_tree
from ndis_offload.lab.scenario import ScenarioError, load_scenario
from ndis_offload.lab.scenario_run import run_step, start
from ndis_offload.viz.console import write_json
from ndis_offload.viz.outputs import SEQUENCE_PICTURES, add_picture_options, save_pictures
from ndis_offload.viz.report_stack import run_pictures
from ndis_offload.viz.tables import step_table


def add_arguments(p: argparse.ArgumentParser) -> None:
    """The ``run`` subcommand's arguments (its name and help are in ``cli/main.py``)."""
    p.add_argument("scenario", metavar="SCENARIO.json", help="scenario file ('-' not supported)")
    p.add_argument("--json", action="store_true", help="one JSON object per line per step")
    add_picture_options(p, **SEQUENCE_PICTURES)
    p.set_defaults(run=run)


def read_document(path: Path) -> Any:
    """The parsed JSON of ``path``; :class:`CliError` (exit 2) naming what is wrong."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as err:
        raise CliError(f"cannot read scenario {str(path)!r}: {err.strerror or err}") from err
    except UnicodeDecodeError as err:
        raise CliError(f"{path}: not UTF-8 text ({err.reason})") from err
    try:
        return json.loads(text)
    except json.JSONDecodeError as err:
        raise CliError(
            f"{path}: bad JSON at line {err.lineno} column {err.colno}: {err.msg}"
        ) from err
    except RecursionError as err:
        raise CliError(f"{path}: bad JSON: nested too deeply") from err


def _same_as(result: dict[str, Any]) -> str:
    """What makes two steps' text rendering alike (everything but the step and protocol)."""
    return json.dumps({k: v for k, v in result.items() if k not in ("step", "by")}, default=str)


def run(args: argparse.Namespace, console: Console) -> int:
    path = Path(args.scenario)
    data = read_document(path)
    try:
        scenario = load_scenario(data)
    except ScenarioError as err:
        raise CliError(f"{path}: {err.detail}") from err
    except RecursionError as err:
        raise CliError(f"{path}: bad JSON: nested too deeply") from err
    state = start(scenario)
    if not args.json:
        adapter = scenario.adapter
        filters = ", ".join(f.name for f in scenario.filters) or "none"
        console.print(
            f"[bold]{safe(path.name)}[/bold]: profile [cyan]{safe(adapter.profile.name)}"
            f"[/cyan], miniport [cyan]{safe(adapter.variant)}[/cyan], filters {safe(filters)}",
            highlight=False,
        )
    repeats: list[dict[str, Any]] = []
    shown: tuple[int, str] | None = None
    for step in scenario.steps:
        result = run_step(state, step).to_dict()
        if args.json:
            write_json(console, result)
            continue
        key = _same_as(result)
        if shown is not None and shown[1] == key:
            repeats.append(result)
            continue
        _print_repeats(console, repeats, shown)
        repeats = []
        console.print(step_table(safe_tree(result)))
        shown = (result["step"], key)
    if not args.json:
        _print_repeats(console, repeats, shown)
    save_pictures(error_console(args, console), args, run_pictures(state, path.name))
    failed = [r for r in state.results if r.failures]
    if failed:
        if not args.json:
            console.print(
                f"[bold red]{len(failed)} step(s) did not meet their expect[/bold red]: "
                + ", ".join(str(r.index) for r in failed)
            )
        return EXIT_FOUND
    return EXIT_OK


def _print_repeats(
    console: Console, repeats: list[dict[str, Any]], shown: tuple[int, str] | None
) -> None:
    """One line for a run of steps whose tables would repeat step ``shown`` exactly."""
    if not repeats or shown is None:
        return
    by = [str(r.get("by", "")) for r in repeats]
    names = ", ".join(by[:5]) + (f", ... {by[-1]}" if len(by) > 5 else "")
    first, last = repeats[0]["step"], repeats[-1]["step"]
    steps = f"step {first}" if first == last else f"steps {first}-{last}"
    console.print(
        f"{steps}: {safe(repeats[0].get('action', ''))} (by {safe(names)}): "
        f"the same result as step {shown[0]}",
        highlight=False,
    )
