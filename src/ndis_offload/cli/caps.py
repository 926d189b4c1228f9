"""``ndis-offload caps``: hardware capabilities beside the current configuration, like
``ethtool -k``."""

from __future__ import annotations

import argparse

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from ndis_offload.cli.errors import CliError
from ndis_offload.lab.demo import encapsulation_names
from ndis_offload.lab.scenario import (
    AdapterSpec,
    ScenarioError,
    build_profile,
    make_miniport,
)
from ndis_offload.stack.core import NdisStack
from ndis_offload.stack.features import FEATURE_TABLE, FEATURES, features_of
from ndis_offload.stack.profiles import DEFAULT_PROFILE, PROFILES
from ndis_offload.viz.console import write_json
from ndis_offload.viz.tables import caps_table, limits_table


def add_arguments(p: argparse.ArgumentParser) -> None:
    """The ``caps`` subcommand's arguments (its name and help are in ``cli/main.py``)."""
    p.add_argument("--profile", default=DEFAULT_PROFILE, help="built-in adapter profile")
    p.add_argument(
        "--keyword",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="override a standardized INF keyword, e.g. '*LsoV2IPv4=0' (repeatable)",
    )
    p.add_argument(
        "--encapsulation",
        action="append",
        default=None,
        metavar="NAME",
        help="NDIS_ENCAPSULATION_* every offload type supports instead (repeatable)",
    )
    p.add_argument("--variant", default="reference", help="miniport behaviour variant")
    p.add_argument("--list-profiles", action="store_true", help="list the built-in profiles")
    p.add_argument("--json", action="store_true", help="one JSON object for machines")
    p.set_defaults(run=run)


def parse_keywords(items: list[str]) -> dict[str, str | int]:
    """``['*LsoV2IPv4=0']`` -> ``{'*LsoV2IPv4': 0}`` (:class:`ScenarioError` if malformed)."""
    out: dict[str, str | int] = {}
    for item in items:
        name, sep, value = item.partition("=")
        if not sep or not name.strip() or not value.strip():
            raise ScenarioError(f"--keyword {item!r}: expected NAME=VALUE, e.g. '*LsoV2IPv4=0'")
        text = value.strip()
        try:
            out[name.strip()] = int(text, 0)
        except ValueError:
            out[name.strip()] = text
    return out


def run(args: argparse.Namespace, console: Console) -> int:
    if args.list_profiles:
        return _list_profiles(args, console)
    try:
        profile = build_profile(
            args.profile, parse_keywords(args.keyword), args.encapsulation, where="caps"
        )
        stack = NdisStack(make_miniport(AdapterSpec(profile, args.variant)))
    except ScenarioError as err:
        raise CliError(err.detail) from err
    hw_offload = stack.hardware_capabilities
    cur_offload = stack.config
    hardware = features_of(hw_offload) if hw_offload is not None else frozenset()
    current = features_of(cur_offload) if cur_offload is not None else frozenset()
    if args.json:
        write_json(
            console,
            {
                "profile": profile.name,
                "description": profile.description,
                "variant": args.variant,
                "keywords": profile.keywords,
                "encapsulations": {
                    kind: encapsulation_names(mask)
                    for kind, mask in profile.limits.encapsulations.items()
                },
                "features": [
                    {
                        "name": f,
                        "label": FEATURE_TABLE[f].label,
                        "ip": f"IPv{FEATURE_TABLE[f].ip}",
                        "direction": FEATURE_TABLE[f].direction,
                        "keyword": FEATURE_TABLE[f].keyword,
                        "hardware": f in hardware,
                        "current": f in current,
                    }
                    for f in FEATURES
                ],
                "hardware_capabilities": None if hw_offload is None else hw_offload.to_dict(),
                "current_config": None if cur_offload is None else cur_offload.to_dict(),
            },
            indent=1,
        )
        return 0
    console.print(
        f"[bold]{escape(profile.name)}[/bold]: {escape(profile.description)}", highlight=False
    )
    if hw_offload is None:
        console.print(
            "[yellow]The adapter reports no task offload: OID_TCP_OFFLOAD_* queries and "
            "OID_OFFLOAD_ENCAPSULATION sets return NDIS_STATUS_NOT_SUPPORTED.[/yellow]"
        )
    console.print(caps_table(hardware, current))
    if hw_offload is not None:
        console.print(limits_table(hw_offload, cur_offload))
    keywords = Table(title="INF keywords (registry)")
    keywords.add_column("keyword")
    keywords.add_column("value", justify="right")
    for name, value in profile.keywords.items():
        keywords.add_row(name, str(value))
    console.print(keywords)
    return 0


def _list_profiles(args: argparse.Namespace, console: Console) -> int:
    if args.json:
        write_json(
            console,
            [{"name": p.name, "description": p.description} for p in PROFILES.values()],
            indent=1,
        )
        return 0
    table = Table(title="Built-in adapter profiles")
    table.add_column("profile")
    table.add_column("description")
    for p in PROFILES.values():
        default = " [dim](default)[/dim]" if p.name == DEFAULT_PROFILE else ""
        table.add_row(escape(p.name) + default, escape(p.description))
    console.print(table)
    return 0
