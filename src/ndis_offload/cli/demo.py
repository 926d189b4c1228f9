"""``ndis-offload demo``: the documented enable/disable flow on an in-memory adapter."""

from __future__ import annotations

import argparse

from rich.columns import Columns
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from ndis_offload.cli.errors import CliError, error_console
from ndis_offload.lab.demo import encapsulation_names, run_demo
from ndis_offload.lab.scenario import ScenarioError
from ndis_offload.stack.profiles import DEFAULT_PROFILE, ProfileError, get_profile
from ndis_offload.viz.console import heading, write_json
from ndis_offload.viz.outputs import SEQUENCE_PICTURES, add_picture_options, save_pictures
from ndis_offload.viz.report_stack import demo_pictures
from ndis_offload.viz.sequence import render_sequence
from ndis_offload.viz.tables import offload_grid, usable_table


def add_arguments(p: argparse.ArgumentParser) -> None:
    """The ``demo`` subcommand's arguments (its name and help are in ``cli/main.py``)."""
    p.description = (
        "Two protocols bind to an in-memory adapter, pre-check support (bind "
        "parameters / OID_TCP_OFFLOAD_CURRENT_CONFIG), tcpip enables and disables offload "
        "with OID_OFFLOAD_ENCAPSULATION, then a protocol asks for LLC/SNAP routed on an "
        "802.3 adapter and falls back to no offload."
    )
    p.add_argument("--json", action="store_true", help="the full trace and a summary as JSON")
    p.add_argument("--profile", default=DEFAULT_PROFILE, help="adapter profile (see caps)")
    p.add_argument("--variant", default="reference", help="miniport behaviour variant")
    add_picture_options(p, **SEQUENCE_PICTURES)
    p.set_defaults(run=run)


def run(args: argparse.Namespace, console: Console) -> int:
    try:
        demo = run_demo(get_profile(args.profile), args.variant)
    except (ProfileError, ScenarioError) as err:
        raise CliError(err.detail) from err
    stack = demo.stack
    save_pictures(error_console(args, console), args, demo_pictures(demo))
    if args.json:
        write_json(
            console,
            {"summary": demo.summary(), "trace": [e.to_dict() for e in stack.trace]},
            indent=1,
        )
        return 0
    heading(
        console,
        f"[bold]ndis-offload demo[/bold] · profile [cyan]{escape(demo.profile.name)}[/cyan] · "
        f"miniport [cyan]{escape(demo.variant)}[/cyan]",
    )
    console.print(f"[dim]{escape(demo.profile.description)}[/dim]")
    filters = [f.name for f in stack.filters]
    console.print(render_sequence(stack.trace, filters, width=min(console.width, 120)))

    checks = Table(title="Pre-checks: does the adapter support our encapsulation?")
    checks.add_column("protocol")
    checks.add_column("checked via")
    checks.add_column("status")
    checks.add_column("Encapsulation (OR)")
    checks.add_column("802.3?")
    for name, check in demo.prechecks:
        via = "bind parameters" if check.via == "bind" else "query CURRENT_CONFIG"
        names = [
            n.removeprefix("NDIS_ENCAPSULATION_") for n in encapsulation_names(check.encapsulations)
        ]
        checks.add_row(
            name,
            via,
            check.status.c_name,
            "\n".join(names) or "NOT_SUPPORTED",
            "[green]yes[/green]" if check.supported else "[red]no[/red]",
        )
    console.print(checks)
    console.print(
        Columns(
            [
                offload_grid("Current config before", demo.config_before, demo.hardware),
                offload_grid(
                    f"After enable ({demo.enable_status})", demo.config_after_enable, demo.hardware
                ),
                offload_grid(
                    f"After disable ({demo.disable_status})",
                    demo.config_after_disable,
                    demo.hardware,
                ),
            ]
        )
    )
    if demo.receive_checksum_started:
        started = demo.receive_checksum_started
        phases = ", ".join(f"{phase}: {'yes' if on else 'no'}" for phase, on in started.items())
        console.print(
            f"Miniport validates receive checksums ({phases}) — not before the first "
            "successful OID_OFFLOAD_ENCAPSULATION set."
        )
    received = Table(title="Status indications each protocol received")
    received.add_column("protocol")
    received.add_column("count", justify="right")
    received.add_column("statuses")
    for name, statuses in demo.indications.items():
        received.add_row(name, str(len(statuses)), ", ".join(statuses) or "-")
    console.print(received)
    console.print(usable_table(demo.usable))
    llc = demo.protocols["llcsnap"]
    if not llc.failed:  # an adapter that supports LLC/SNAP on some offload type
        console.print(
            "LLC/SNAP case: llcsnap asked for NDIS_ENCAPSULATION_IEEE_LLC_SNAP_ROUTED → "
            f"[green]{demo.failing_status}[/green]; it uses only the offload types whose "
            f"Encapsulation includes LLC/SNAP: {', '.join(sorted(llc.usable)) or 'none'}."
        )
        return 0
    verdict = "uses no offload" if not llc.usable else "still uses offload (!)"
    console.print(
        f"Failing case: llcsnap asked for NDIS_ENCAPSULATION_IEEE_LLC_SNAP_ROUTED → "
        f"[bold red]{demo.failing_status}[/bold red] "
        f"[dim]({escape(demo.failing_detail)})[/dim]; it {verdict} on this adapter."
    )
    return 0
