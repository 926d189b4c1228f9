"""``ndis-offload rss``: the NDIS Toeplitz hash and queue of a 5-tuple or of every frame of a
capture, as a driver author checks their own RSS implementation.

    ndis-offload rss --src 66.9.149.187:2794 --dst 161.142.100.80:1766
    ndis-offload rss CAPTURE [--types TCP_IPV4,IPV4,...] [--table-size 128] [--queues 4]
"""

from __future__ import annotations

import argparse
import ipaddress
import json
from typing import Any

import numpy as np
from rich.console import Console
from rich.table import Table

from ndis_offload.capture.flows import flow_keys_chunk
from ndis_offload.cli.errors import CliError, int_range
from ndis_offload.constants.rss import NdisHashType
from ndis_offload.engine.rss import (
    ALL_HASH_TYPES,
    SYMMETRIC_KEY,
    VERIFICATION_KEY,
    IndirectionTable,
    RssError,
    Toeplitz,
    hash_flows,
    hash_input,
    select_hash_type,
    uses_ports,
)
from ndis_offload.io.capture import open_capture

DEFAULT_TYPES = (
    NdisHashType.IPV4 | NdisHashType.TCP_IPV4 | NdisHashType.UDP_IPV4
    | NdisHashType.IPV6 | NdisHashType.TCP_IPV6 | NdisHashType.UDP_IPV6
)  # fmt: skip


def add_arguments(p: argparse.ArgumentParser) -> None:
    """The ``rss`` subcommand's arguments (its name and help are in ``cli/main.py``)."""
    p.add_argument("capture", nargs="?", help="hash every frame of this pcap / pcapng")
    p.add_argument("--src", help="source ADDRESS[:PORT] (IPv6 as [ADDR]:PORT)")
    p.add_argument("--dst", help="destination ADDRESS[:PORT]")
    p.add_argument("--proto", choices=("tcp", "udp"), default="tcp", help="transport (tcp)")
    p.add_argument(
        "--types",
        default=",".join(t.name or "" for t in NdisHashType if t & DEFAULT_TYPES),
        help="enabled NDIS_HASH_* types, comma-separated (default: IPv4/IPv6 with TCP and UDP)",
    )
    p.add_argument(
        "--key",
        default="verification",
        help="secret key as hex, or 'verification' (the doc's key) or 'symmetric'",
    )
    p.add_argument("--table-size", type=int, default=128, help="indirection table entries")
    p.add_argument("--queues", type=int_range(1, 1024), default=4,
                   help="receive queues (round-robin table), 1..1024")  # fmt: skip
    p.add_argument("--limit", type=int_range(0), default=0, help="frames shown (0: all)")
    p.add_argument("--json", action="store_true", help="JSON Lines, one object per row")
    p.set_defaults(run=run)


def _parse_types(text: str) -> NdisHashType:
    bits = 0
    for name in filter(None, (part.strip().upper() for part in text.split(","))):
        name = name.removeprefix("NDIS_HASH_")
        if name not in NdisHashType.__members__:
            valid = ", ".join(NdisHashType.__members__)
            raise RssError(f"unknown hash type {name!r} (valid: {valid})")
        bits |= NdisHashType[name]
    if not bits & ALL_HASH_TYPES:
        raise RssError("no hash type enabled")
    return NdisHashType(bits)


def parse_key(text: str) -> bytes:
    """``--key``: hex, or ``verification`` / ``symmetric``."""
    if text == "verification":
        return VERIFICATION_KEY
    if text == "symmetric":
        return SYMMETRIC_KEY
    try:
        return bytes.fromhex(text.replace(":", "").replace(",", "").replace("0x", ""))
    except ValueError:
        raise RssError(f"--key {text!r} is not hex") from None


def _endpoint(text: str) -> tuple[bytes, int | None]:
    host, port = text, None
    if text.startswith("["):
        host, _, rest = text[1:].partition("]")
        port = int(rest[1:]) if rest.startswith(":") else None
    elif text.count(":") == 1:
        host, _, tail = text.partition(":")
        port = int(tail)
    try:
        address = ipaddress.ip_address(host).packed
    except ValueError:
        raise RssError(f"{text!r} is not an IP address") from None
    if port is not None and not 0 <= port <= 0xFFFF:
        raise RssError(f"port {port} is outside 0..65535")
    return address, port


def run(args: argparse.Namespace, out: Console) -> int:
    try:
        enabled = _parse_types(args.types)
        toeplitz = Toeplitz(parse_key(args.key))
        table = IndirectionTable.round_robin(args.table_size, args.queues)
        if args.capture is None:
            return _tuple(args, enabled, toeplitz, table, out)
        return _capture(args, enabled, toeplitz, table, out)
    except (RssError, ValueError) as error:  # NdisError, OSError: main's one error path
        raise CliError(str(error)) from error


def _tuple(
    args: argparse.Namespace,
    enabled: NdisHashType,
    toeplitz: Toeplitz,
    table: IndirectionTable,
    out: Console,
) -> int:
    if not args.src or not args.dst:
        raise RssError("give a CAPTURE, or --src and --dst")
    src, sport = _endpoint(args.src)
    dst, dport = _endpoint(args.dst)
    if len(src) != len(dst):
        raise RssError("--src and --dst must both be IPv4 or both IPv6")
    has_ports = sport is not None and dport is not None
    proto = (6 if args.proto == "tcp" else 17) if has_ports else 0
    chosen = select_hash_type(enabled, 4 if len(src) == 4 else 6, proto)
    if chosen is None:
        raise RssError("no enabled hash type applies to this packet (the NIC would not hash it)")
    ports = uses_ports(chosen)
    data = hash_input(src, dst, sport if ports else None, dport if ports else None)
    value = toeplitz.hash(data)
    queue = int(table.queue_of(np.array([value], np.uint32))[0])
    row = {
        "hash_type": f"NDIS_HASH_{chosen.name}",
        "input": data.hex(),
        "hash": f"0x{value:08x}",
        "queue": queue,
    }
    if args.json:
        out.print(json.dumps(row), soft_wrap=True, highlight=False, markup=False)
    else:
        for key, value_text in row.items():
            out.print(f"{key:>9}: {value_text}", highlight=False, markup=False)
    return 0


def _capture(
    args: argparse.Namespace,
    enabled: NdisHashType,
    toeplitz: Toeplitz,
    table: IndirectionTable,
    out: Console,
) -> int:
    grid = Table("frame", "hash type", "hash", "queue")
    shown = 0
    per_queue: dict[int, int] = {}
    stream, reader = open_capture(args.capture)
    with stream:
        for chunk in reader.chunks():
            keys = flow_keys_chunk(chunk.buffer, chunk.data_offsets, chunk.caplens,
                                   chunk.linktypes)  # fmt: skip
            hashes, types = hash_flows(keys, enabled, toeplitz)
            queues = table.queue_of(hashes)
            for i in range(len(chunk)):
                kind = int(types[i])
                queue: int | None = int(queues[i]) if kind else None
                if queue is not None:
                    per_queue[queue] = per_queue.get(queue, 0) + 1
                if args.limit and shown >= args.limit:
                    continue
                shown += 1
                row: dict[str, Any] = {
                    "frame": chunk.first_index + i + 1,
                    "hash_type": f"NDIS_HASH_{NdisHashType(kind).name}" if kind else None,
                    "hash": f"0x{int(hashes[i]):08x}" if kind else None,
                    "queue": queue,
                }
                if args.json:
                    out.print(json.dumps(row), soft_wrap=True, highlight=False, markup=False)
                else:
                    grid.add_row(
                        str(row["frame"]),
                        row["hash_type"] or "not hashed",
                        row["hash"] or "-",
                        "-" if queue is None else str(queue),
                    )
    if not args.json:
        out.print(grid)
        spread = ", ".join(f"{q}: {n}" for q, n in sorted(per_queue.items()))
        out.print(f"frames per queue: {spread or 'none hashed'}", highlight=False)
    return 0
