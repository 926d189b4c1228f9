"""``ndis-offload tap up NAME``: a TAP NIC whose offloads follow the NDIS model."""

from __future__ import annotations

import argparse

from rich.console import Console
from rich.markup import escape

from ndis_offload.cli.errors import CliError
from ndis_offload.errors import BackendError
from ndis_offload.io.tap.cleanup import terminate_on_sigterm
from ndis_offload.io.tap.wire import MODES, TapUp
from ndis_offload.lab.scenario import ScenarioError, build_profile
from ndis_offload.stack.profiles import DEFAULT_PROFILE
from ndis_offload.viz.console import write_json


def add_arguments(p: argparse.ArgumentParser) -> None:
    """The ``tap`` subcommand's arguments (its name and help are in ``cli/main.py``)."""
    actions = p.add_subparsers(dest="tap_action", metavar="ACTION")
    actions.required = True
    up = actions.add_parser("up", help="create the TAP and serve it until SIGINT / SIGTERM")
    up.add_argument("name", help="device name (1-15 bytes)")
    up.add_argument("--profile", default=DEFAULT_PROFILE, help="built-in adapter profile")
    up.add_argument("--variant", default="reference", help="miniport behaviour variant")
    up.add_argument("--netns", metavar="NS", help="put the TAP in this namespace (created if new)")
    up.add_argument("--socket", metavar="PATH", help="control socket (default under /run)")
    up.add_argument("--pcap", metavar="FILE", help="record what the send path puts on the wire")
    up.add_argument("--mode", choices=MODES, default="segment", help="send-path work")
    up.add_argument("--mtu", type=int, default=1500)
    up.add_argument("--duration", type=float, help="stop after this many seconds")
    up.add_argument("--json", action="store_true", help="JSON lines: ready, then final stats")
    up.set_defaults(run=run)


def run(args: argparse.Namespace, console: Console) -> int:
    from ndis_offload.io import netns

    why = netns.preflight()
    if why is not None:
        raise CliError(f"tap {why}")
    terminate_on_sigterm()
    try:
        profile = build_profile(args.profile, where="--profile")
        tap = TapUp(
            args.name,
            profile,
            variant=args.variant,
            namespace=args.netns,
            socket=args.socket,
            pcap=args.pcap,
            mtu=args.mtu,
            mode=args.mode,
        )
    except ScenarioError as err:
        raise CliError(err.detail) from err
    except BackendError as err:
        raise CliError(err.detail, code=1) from err
    try:
        info = tap.describe()
        if args.json:
            write_json(console, {"ready": info})
        else:
            console.print(
                f"[bold]{escape(info['device'])}[/bold] up"
                + (f" in {escape(info['namespace'])}" if info["namespace"] else "")
                + f": TUNSETOFFLOAD {info['tunsetoffload']}; control socket "
                f"{escape(info['socket'])}",
                highlight=False,
            )
        console.file.flush()
        tap.run(duration=args.duration)
        stats = tap.stats()
    finally:
        tap.close()
    if args.json:
        write_json(console, {"stats": stats})
    return 0
