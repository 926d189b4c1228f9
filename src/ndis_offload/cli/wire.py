"""``ndis-offload wire``: two namespaces, one TAP NIC each, joined by the offload engine."""

from __future__ import annotations

import argparse

from rich.console import Console
from rich.markup import escape

from ndis_offload.cli.errors import CliError
from ndis_offload.errors import BackendError
from ndis_offload.io.tap.cleanup import sweep, terminate_on_sigterm
from ndis_offload.io.tap.wire import DEFAULT_PROCESSES, MODES, Wire, WireOptions
from ndis_offload.lab.scenario import ScenarioError, build_profile
from ndis_offload.stack.profiles import DEFAULT_PROFILE
from ndis_offload.viz.console import write_json


def add_arguments(p: argparse.ArgumentParser) -> None:
    """The ``wire`` subcommand's arguments (its name and help are in ``cli/main.py``)."""
    p.add_argument("--profile-a", default=DEFAULT_PROFILE, help="adapter profile of side A")
    p.add_argument("--profile-b", default=DEFAULT_PROFILE, help="adapter profile of side B")
    p.add_argument("--variant-a", default="reference", help="miniport variant of side A")
    p.add_argument("--variant-b", default="reference", help="miniport variant of side B")
    p.add_argument("--mode", choices=MODES, default="passthrough", help="what crosses the wire")
    p.add_argument("--pcap", metavar="FILE", help="record what crosses the wire (pcapng)")
    p.add_argument("--socket", metavar="PATH", help="control socket (default under /run)")
    p.add_argument("--mtu", type=int, default=1500, help="wire MTU (default 1500)")
    p.add_argument(
        "--processes",
        type=int,
        choices=(1, 2),
        help=f"NIC processes: 2 runs each NIC in its own process (two cores), 1 both in one "
        f"(default {DEFAULT_PROCESSES}; a capture needs 1)",
    )
    p.add_argument("--duration", type=float, help="stop after this many seconds")
    p.add_argument("--json", action="store_true", help="JSON lines: ready, then final stats")
    p.add_argument(
        "--cleanup",
        action="store_true",
        help="remove namespaces, sockets and processes left by killed wires, then exit",
    )
    p.set_defaults(run=run)


def run(args: argparse.Namespace, console: Console) -> int:
    from ndis_offload.io import netns

    why = netns.preflight()
    if why is not None:
        raise CliError(f"wire {why}")
    if args.cleanup:
        removed = sweep()
        if args.json:
            write_json(console, {"removed": removed})
        else:
            for item in removed:
                console.print(f"removed {escape(item)}", highlight=False)
            if not removed:
                console.print("nothing to clean up")
        return 0
    try:
        options = WireOptions(
            build_profile(args.profile_a, where="--profile-a"),
            build_profile(args.profile_b, where="--profile-b"),
            variant_a=args.variant_a,
            variant_b=args.variant_b,
            mode=args.mode,
            pcap=args.pcap,
            socket=args.socket,
            mtu=args.mtu,
            processes=args.processes or (1 if args.pcap else DEFAULT_PROCESSES),
        )
    except ScenarioError as err:
        raise CliError(err.detail) from err
    terminate_on_sigterm()
    try:
        wire = Wire(options)
    except (BackendError, ScenarioError) as err:
        raise CliError(err.detail, code=1) from err
    try:
        info = wire.describe()
        if args.json:
            write_json(console, {"ready": info})
        else:
            ns = info["namespaces"]
            console.print(
                f"[bold]wire up[/bold] ({info['mode']}): {ns['a']} 10.77.0.1 <-> "
                f"{ns['b']} 10.77.0.2; control socket {escape(info['socket'])}",
                highlight=False,
            )
            console.print(
                f"  try: ip netns exec {ns['b']} iperf3 -s & ip netns exec {ns['a']} iperf3 -c "
                f"10.77.0.2;  ndis-offload oid --socket {escape(info['socket'])} stats --watch",
                highlight=False,
            )
        console.file.flush()
        wire.run(duration=args.duration)
        stats = wire.stats()
    except BackendError as err:
        raise CliError(err.detail, code=1) from err
    finally:
        wire.close()
    if args.json:
        write_json(console, {"stats": stats})
    else:
        for side, data in stats["sides"].items():
            console.print(
                f"side {side}: {data['wire_frames']} frames / {data['wire_bytes']} bytes onto "
                f"the wire, TUNSETOFFLOAD {data['tunsetoffload_names']}",
                highlight=False,
            )
    return 0
