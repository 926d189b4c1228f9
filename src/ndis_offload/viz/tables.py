"""rich tables for offload state, in the spirit of ``ethtool -k``."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from rich.table import Table

from ndis_offload.stack.features import FEATURE_TABLE, FEATURES
from ndis_offload.structs.offload import NdisOffload

COLUMNS = ("IPv4 Tx", "IPv4 Rx", "IPv6 Tx", "IPv6 Rx")


def _grid() -> tuple[tuple[str, tuple[str | None, ...]], ...]:
    rows: dict[str, list[str | None]] = {}
    for row in FEATURE_TABLE.values():
        cells = rows.setdefault(row.row, [None] * len(COLUMNS))
        cells[COLUMNS.index(f"IPv{row.ip} {row.direction}")] = row.feature
    return tuple((label, tuple(cells)) for label, cells in rows.items())


GRID: tuple[tuple[str, tuple[str | None, ...]], ...] = _grid()
"""Rows (offload types) by columns (IP version x direction), read from the feature table."""


SHORT_ENCAPSULATION = {
    "NDIS_ENCAPSULATION_NULL": "NULL",
    "NDIS_ENCAPSULATION_IEEE_802_3": "802.3",
    "NDIS_ENCAPSULATION_IEEE_802_3_P_AND_Q": "802.1Q",
    "NDIS_ENCAPSULATION_IEEE_802_3_P_AND_Q_IN_OOB": "802.1Q-OOB",
    "NDIS_ENCAPSULATION_IEEE_LLC_SNAP_ROUTED": "LLC/SNAP",
}


def _cell(name: str | None, on: frozenset[str] | None, hardware: frozenset[str] | None) -> str:
    if name is None:
        return "[dim]·[/dim]"
    if hardware is not None and name not in hardware:
        return "[dim]off [fixed][/dim]"
    if on is not None and name in on:
        return "[green]on[/green]"
    return "[red]off[/red]"


def offload_grid(
    title: str, on: frozenset[str] | None, hardware: frozenset[str] | None = None
) -> Table:
    """Offload types by IP version and direction: ``on``, ``off``, ``off [fixed]`` (the
    hardware cannot), ``·`` (no such offload)."""
    table = Table(title=title, title_justify="left")
    table.add_column("offload")
    for column in COLUMNS:
        table.add_column(column, justify="center")
    if on is None:
        title += " (adapter reports no task offload)"
        table.title = title
    for label, names in GRID:
        table.add_row(label, *(_cell(n, on, hardware) for n in names))
    return table


def caps_table(hardware: frozenset[str], current: frozenset[str]) -> Table:
    """One row per feature: hardware capability beside current configuration."""
    table = Table(title="Offload features (hardware capabilities | current configuration)")
    table.add_column("feature")
    table.add_column("IP")
    table.add_column("dir")
    table.add_column("hardware", justify="center")
    table.add_column("current", justify="center")
    table.add_column("INF keyword", no_wrap=True)
    for feature in FEATURES:
        row = FEATURE_TABLE[feature]
        hw = feature in hardware
        cur = feature in current
        table.add_row(
            row.label,
            f"IPv{row.ip}",
            row.direction,
            "[green]yes[/green]" if hw else "[dim]no[/dim]",
            "[green]on[/green]" if cur else ("[red]off[/red]" if hw else "[dim]off [fixed][/dim]"),
            row.keyword,
        )
    return table


def limits_rows(offload: NdisOffload | None) -> list[tuple[str, str, str]]:
    """(part, member, value) rows of the numbers an ``NDIS_OFFLOAD`` carries."""
    from ndis_offload.lab.demo import encapsulation_names

    if offload is None:
        return []
    c = offload.Checksum

    def enc(mask: int) -> str:
        names = [SHORT_ENCAPSULATION.get(n, n) for n in encapsulation_names(mask)]
        return ", ".join(names) if names else "-"

    return [
        ("Header", "Revision / Size", f"{offload.Header.Revision} / {offload.Header.Size}"),
        ("Checksum.IPv4Transmit", "Encapsulation", enc(c.IPv4Transmit.Encapsulation)),
        ("Checksum.IPv4Receive", "Encapsulation", enc(c.IPv4Receive.Encapsulation)),
        ("Checksum.IPv6Transmit", "Encapsulation", enc(c.IPv6Transmit.Encapsulation)),
        ("Checksum.IPv6Receive", "Encapsulation", enc(c.IPv6Receive.Encapsulation)),
        ("LsoV1.IPv4", "Encapsulation", enc(offload.LsoV1.IPv4.Encapsulation)),
        ("LsoV1.IPv4", "MaxOffLoadSize", str(offload.LsoV1.IPv4.MaxOffLoadSize)),
        ("LsoV1.IPv4", "MinSegmentCount", str(offload.LsoV1.IPv4.MinSegmentCount)),
        ("LsoV2.IPv4", "Encapsulation", enc(offload.LsoV2.IPv4.Encapsulation)),
        ("LsoV2.IPv4", "MaxOffLoadSize", str(offload.LsoV2.IPv4.MaxOffLoadSize)),
        ("LsoV2.IPv4", "MinSegmentCount", str(offload.LsoV2.IPv4.MinSegmentCount)),
        ("LsoV2.IPv6", "Encapsulation", enc(offload.LsoV2.IPv6.Encapsulation)),
        ("LsoV2.IPv6", "MaxOffLoadSize", str(offload.LsoV2.IPv6.MaxOffLoadSize)),
        ("LsoV2.IPv6", "MinSegmentCount", str(offload.LsoV2.IPv6.MinSegmentCount)),
    ] + [
        row
        for name, part in (
            ("UdpSegmentation.IPv4", offload.UdpSegmentation.IPv4),
            ("UdpSegmentation.IPv6", offload.UdpSegmentation.IPv6),
        )
        for row in (
            (name, "Encapsulation", enc(part.Encapsulation)),
            (name, "MaxOffLoadSize", str(part.MaxOffLoadSize)),
        )
    ]


def limits_table(hardware: NdisOffload | None, current: NdisOffload | None) -> Table:
    """LSO/USO sizes and encapsulations, hardware beside current."""
    table = Table(title="NDIS_OFFLOAD members (hardware | current)")
    table.add_column("part")
    table.add_column("member")
    table.add_column("hardware")
    table.add_column("current")
    hw_rows = limits_rows(hardware)
    cur_rows = limits_rows(current)
    for i, (part, member, value) in enumerate(hw_rows):
        cur = cur_rows[i][2] if i < len(cur_rows) else "-"
        table.add_row(part, member, value, cur)
    return table


def usable_table(usable: Mapping[str, Mapping[str, Sequence[str]]]) -> Table:
    """Phase by protocol: the offloads each protocol may rely on (sends, and RSC on receive)."""
    protocols: list[str] = []
    for per in usable.values():
        for name in per:
            if name not in protocols:
                protocols.append(name)
    table = Table(title="Offloads each protocol may rely on (send offloads; RSC on receive)")
    table.add_column("when")
    for name in protocols:
        table.add_column(name)
    for phase, per in usable.items():
        cells = []
        for name in protocols:
            if name not in per:
                cells.append("[dim](not bound)[/dim]")
            elif not per[name]:
                cells.append("[red]none[/red]")
            else:
                cells.append(compact_features(per[name]))
        table.add_row(phase, *cells)
    return table


def compact_features(features: Sequence[str]) -> str:
    """A short spelling of a feature list: ``csum4 tx+rx, lsov2_4, ...`` (a checksum group is
    every checksum feature of one IP version in the feature table)."""
    have = set(features)
    parts: list[str] = []
    for ip in (4, 6):
        group = [r for r in FEATURE_TABLE.values() if r.offload_type == "checksum" and r.ip == ip]
        dirs = [
            d for d in ("Tx", "Rx") if all(r.feature in have for r in group if r.direction == d)
        ]
        partial = [r.feature for r in group if r.feature in have and r.direction not in dirs]
        if dirs:
            parts.append(f"csum{ip} " + "+".join(d.lower() for d in dirs))
        parts += partial
    parts += [f for f in FEATURES if f in have and FEATURE_TABLE[f].offload_type != "checksum"]
    return ", ".join(parts)


def step_table(result: Mapping[str, Any]) -> Table:
    """One scenario step result (``StepResult.to_dict()``) as a two-column table."""
    status = str(result.get("status", ""))
    style = (
        "green"
        if status == "NDIS_STATUS_SUCCESS"
        else ("yellow" if status == "NDIS_STATUS_PENDING" else "red")
    )
    what = result.get("action", "")
    if result.get("oid"):
        what = f"{what} {result['oid']}"
    if result.get("by"):
        what = f"{what}  (by {result['by']})"
    table = Table(title=f"step {result.get('step')}: {what}", title_justify="left")
    table.add_column("field")
    table.add_column("value", overflow="fold")
    table.add_row("status", f"[{style}]{status}[/{style}]")
    if result.get("detail"):
        table.add_row("detail", str(result["detail"]))
    for key in ("BytesRead", "BytesWritten", "BytesNeeded"):
        if key in result:
            table.add_row(key, str(result[key]))
    value = result.get("value")
    offload = _offload_features(value)
    if offload is not None:
        table.add_row("offloads on", offload)
    elif value is not None:
        table.add_row("value", _short_json(value))
    for ind in result.get("indications", []):
        to = ", ".join(ind.get("to", [])) or "nobody"
        table.add_row("indication", f"[magenta]{ind['status']}[/magenta] → {to}")
    for failure in result.get("expect_failed", []):
        table.add_row("[bold red]expect failed[/bold red]", failure)
    return table


def _short_json(value: Any, limit: int = 1200) -> str:
    text = json.dumps(value, separators=(", ", ": "))
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _offload_features(value: Any) -> str | None:
    """For an ``NDIS_OFFLOAD`` value (or bind parameters holding one): its features."""
    from ndis_offload.stack.features import features_of

    if isinstance(value, dict) and "DefaultOffloadConfiguration" in value:
        value = value["DefaultOffloadConfiguration"]
        if value is None:
            return "(no task offload)"
    if not isinstance(value, dict) or "Checksum" not in value:
        return None
    try:
        offload = NdisOffload.from_dict(value)
    except Exception:  # a value we cannot re-read: show it raw
        return None
    return compact_features([f for f in FEATURES if f in features_of(offload)]) or "none"
