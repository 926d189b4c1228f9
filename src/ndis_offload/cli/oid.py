"""``ndis-offload oid --socket PATH ...``: OID requests, capabilities and live statistics of a
running ``wire`` or ``tap up``, over its control socket."""

from __future__ import annotations

import argparse
import json
import time
from typing import Any

from rich.console import Console, Group
from rich.live import Live
from rich.markup import escape
from rich.table import Table

from ndis_offload.cli.errors import CliError
from ndis_offload.constants.offload import (
    NdisEncapsulation,
    NdisOffloadParametersChecksum,
    NdisOffloadParametersLsoV1,
    NdisOffloadParametersLsoV2,
    NdisOffloadParametersRsc,
    NdisOffloadParametersUso,
    NdisOffloadSet,
)
from ndis_offload.errors import BackendError
from ndis_offload.io.tap.control import call
from ndis_offload.io.tap.nic import COUNTER_COLUMNS
from ndis_offload.structs.statistics import supported_members
from ndis_offload.viz.console import write_json

ON_OFF = ("on", "off")
CHECKSUM: dict[str, int] = {
    "off": NdisOffloadParametersChecksum.TX_RX_DISABLED,
    "tx": NdisOffloadParametersChecksum.TX_ENABLED_RX_DISABLED,
    "rx": NdisOffloadParametersChecksum.RX_ENABLED_TX_DISABLED,
    "on": NdisOffloadParametersChecksum.TX_RX_ENABLED,
}
PARAMETER_OPTIONS: dict[str, tuple[str, dict[str, int]]] = {
    "ipv4_checksum": ("IPv4Checksum", CHECKSUM),
    "tcp_ipv4_checksum": ("TCPIPv4Checksum", CHECKSUM),
    "udp_ipv4_checksum": ("UDPIPv4Checksum", CHECKSUM),
    "tcp_ipv6_checksum": ("TCPIPv6Checksum", CHECKSUM),
    "udp_ipv6_checksum": ("UDPIPv6Checksum", CHECKSUM),
    "lsov1": ("LsoV1", {"on": NdisOffloadParametersLsoV1.LSOV1_ENABLED,
                        "off": NdisOffloadParametersLsoV1.LSOV1_DISABLED}),
    "lsov2_ipv4": ("LsoV2IPv4", {"on": NdisOffloadParametersLsoV2.LSOV2_ENABLED,
                                 "off": NdisOffloadParametersLsoV2.LSOV2_DISABLED}),
    "lsov2_ipv6": ("LsoV2IPv6", {"on": NdisOffloadParametersLsoV2.LSOV2_ENABLED,
                                 "off": NdisOffloadParametersLsoV2.LSOV2_DISABLED}),
    "rsc_ipv4": ("RscIPv4", {"on": NdisOffloadParametersRsc.RSC_ENABLED,
                             "off": NdisOffloadParametersRsc.RSC_DISABLED}),
    "rsc_ipv6": ("RscIPv6", {"on": NdisOffloadParametersRsc.RSC_ENABLED,
                             "off": NdisOffloadParametersRsc.RSC_DISABLED}),
}  # fmt: skip
USO: dict[str, int] = {
    "on": NdisOffloadParametersUso.USO_ENABLED,
    "off": NdisOffloadParametersUso.USO_DISABLED,
}


def add_arguments(p: argparse.ArgumentParser) -> None:
    """The ``oid`` subcommand's arguments (its name and help are in ``cli/main.py``)."""
    p.add_argument("--socket", required=True, metavar="PATH", help="the control socket")
    p.add_argument("--side", default=None, help="which NIC (a, b, or the tap name; default all)")
    p.add_argument("--json", action="store_true", help="print the raw JSON answer")
    ops = p.add_subparsers(dest="op", metavar="OP")
    ops.required = True
    s = ops.add_parser("set", help="set an OID")
    s.add_argument("oid", help="OID_OFFLOAD_ENCAPSULATION, OID_TCP_OFFLOAD_PARAMETERS, ...")
    s.add_argument("--ipv4", choices=ON_OFF, help="OID_OFFLOAD_ENCAPSULATION IPv4.Enabled")
    s.add_argument("--ipv6", choices=ON_OFF, help="OID_OFFLOAD_ENCAPSULATION IPv6.Enabled")
    s.add_argument("--header-size", type=int, default=14, help="HeaderSize with ON (14)")
    for dest, (field, values) in PARAMETER_OPTIONS.items():
        s.add_argument(
            "--" + dest.replace("_", "-"), dest=dest, choices=tuple(values),
            help=f"NDIS_OFFLOAD_PARAMETERS.{field}",
        )  # fmt: skip
    s.add_argument("--uso-ipv4", choices=ON_OFF, help="UdpSegmentation.IPv4")
    s.add_argument("--uso-ipv6", choices=ON_OFF, help="UdpSegmentation.IPv6")
    s.add_argument("--value", metavar="JSON", help="the structure as JSON (NDIS field names)")
    s.add_argument("--raw", metavar="HEX", help="the InformationBuffer as hex")
    q = ops.add_parser("query", help="query an OID")
    q.add_argument("oid", help="OID_TCP_OFFLOAD_CURRENT_CONFIG, ...")
    ops.add_parser("caps", help="hardware vs current offloads and TUNSETOFFLOAD per NIC")
    st = ops.add_parser("stats", help="counters per offload and the miniport's statistics OIDs")
    st.add_argument("--watch", action="store_true", help="refresh every --interval until Ctrl-C")
    st.add_argument("--interval", type=float, default=1.0)
    p.set_defaults(run=run)


def set_request(args: argparse.Namespace) -> dict[str, Any]:
    """The control request for ``oid set`` (its options become the NDIS structure)."""
    request: dict[str, Any] = {"op": "set", "oid": args.oid}
    if args.raw:
        request["raw"] = args.raw
        return request
    if args.value:
        request["value"] = json.loads(args.value)
        return request
    value: dict[str, Any] = {}
    for family in ("ipv4", "ipv6"):
        choice = getattr(args, family)
        key = "IPv4" if family == "ipv4" else "IPv6"
        if choice == "on":
            value[key] = {
                "Enabled": int(NdisOffloadSet.ON),
                "EncapsulationType": int(NdisEncapsulation.IEEE_802_3),
                "HeaderSize": args.header_size,
            }
        elif choice == "off":
            value[key] = {"Enabled": int(NdisOffloadSet.OFF)}
    if value:
        for key in ("IPv4", "IPv6"):
            value.setdefault(key, {"Enabled": int(NdisOffloadSet.NO_CHANGE)})
    for dest, (field, values) in PARAMETER_OPTIONS.items():
        choice = getattr(args, dest)
        if choice is not None:
            value[field] = int(values[choice])
    uso = {k: int(USO[getattr(args, f"uso_{k.lower()}")])
           for k in ("IPv4", "IPv6") if getattr(args, f"uso_{k.lower()}")}  # fmt: skip
    if uso:
        value["UdpSegmentation"] = uso
    request["value"] = value
    return request


def run(args: argparse.Namespace, console: Console) -> int:
    try:
        if args.op == "set":
            try:
                request = set_request(args)
            except ValueError as exc:
                raise CliError(f"--value: {exc}") from exc
        elif args.op == "query":
            request = {"op": "query", "oid": args.oid}
        else:
            request = {"op": args.op}
        if args.side:
            request["side"] = args.side
        if args.op == "stats" and args.watch:
            return _watch(args, console, request)
        answer = call(args.socket, request)
    except BackendError as err:
        raise CliError(err.detail, code=1) from err
    if args.json:
        write_json(console, answer, indent=1)
    elif not answer.get("ok") and "results" not in answer:
        raise CliError(f"{answer.get('status')}: {answer.get('error')}", code=1)
    elif args.op in ("set", "query"):
        _print_oid(console, answer)
    elif args.op == "caps":
        for nic in answer["results"]:
            console.print(_caps_table(nic))
    else:
        console.print(_stats_view(answer["stats"]))
    return 0 if answer.get("ok") else 1


def _print_oid(console: Console, answer: dict[str, Any]) -> None:
    for r in answer["results"]:
        colour = "green" if r["ok"] else "red"
        console.print(
            f"[bold]{escape(r['side'])}[/bold] {escape(r['oid'])}: [{colour}]{r['status']}"
            f"[/{colour}] {escape(r['detail'])}; indications "
            f"{', '.join(r['indications']) or 'none'}; TUNSETOFFLOAD {r['tunsetoffload_names']}",
            highlight=False,
        )
        if "value" in r:
            console.print_json(json.dumps(r["value"]))


def _caps_table(nic: dict[str, Any]) -> Table:
    table = Table(
        title=f"{nic['device']} ({nic['profile']}, {nic['variant']}): TUNSETOFFLOAD "
        f"{nic['tunsetoffload_names']}"
    )
    for column in ("offload", "hardware", "current", "kernel may use"):
        table.add_column(column)
    usable = set(nic["usable"])
    for f in nic["features"]:
        table.add_row(
            f["label"],
            "yes" if f["hardware"] else "-",
            "[green]on[/green]" if f["current"] else "off",
            "yes" if f["name"] in usable else "-",
        )
    return table


def _stats_view(stats: dict[str, Any]) -> Group:
    tables = []
    for side, data in stats["sides"].items():
        table = Table(
            title=f"{side} ({stats['mode']}, up {stats['uptime']:.1f} s): TUNSETOFFLOAD "
            f"{data['tunsetoffload_names']}; {data['wire_frames']} frames / "
            f"{data['wire_bytes']:,} bytes onto the wire"
        )
        table.add_column("offload")
        for column in COUNTER_COLUMNS:
            table.add_column(column, justify="right")
        for name, row in data["counters"]["offloads"].items():
            table.add_row(name, *(f"{row[c]:,}" for c in COUNTER_COLUMNS))
        tables.append(table)
        events = data["counters"]["events"]
        if events:
            tables.append(_events_table(events))
        if data.get("statistics"):
            tables.append(_statistics_table(side, data["statistics"]))
    return Group(*tables)


def _statistics_table(side: str, statistics: dict[str, Any]) -> Table:
    """The miniport's answers to the statistics OIDs: every ``NDIS_RSC_STATISTICS_INFO``
    counter; the ``NDIS_STATISTICS_INFO`` members its ``SupportedStatistics`` vouches for."""
    table = Table(title=f"{side}: miniport statistics", show_header=False)
    table.add_column("OID")
    table.add_column("member")
    table.add_column("value", justify="right")
    for oid, answer in statistics.items():
        value = answer.get("value")
        if not isinstance(value, dict) or "Header" not in value:
            why = value.get("undecodable", "") if isinstance(value, dict) else ""
            table.add_row(oid, escape(str(answer.get("status"))), escape(str(why)))
            continue
        if "SupportedStatistics" in value:
            members = supported_members(value["SupportedStatistics"])
        else:
            members = [m for m in value if m != "Header"]
        for member in members:
            table.add_row(oid, member, f"{value[member]:,}")
            oid = ""
    return table


def _events_table(events: dict[str, int]) -> Table:
    table = Table(show_header=False, box=None)
    for name, count in events.items():
        table.add_row(f"  {name}", f"{count:,}")
    return table


def _watch(args: argparse.Namespace, console: Console, request: dict[str, Any]) -> int:
    try:
        with Live(console=console, auto_refresh=False) as live:
            while True:
                answer = call(args.socket, request)
                live.update(_stats_view(answer["stats"]), refresh=True)
                time.sleep(args.interval)
    except KeyboardInterrupt:
        return 0
    except BackendError as err:
        raise CliError(err.detail, code=1) from err
