"""Inline-SVG charts (grouped bars, lines over time) for the HTML reports: no script, no
library, nothing to install. Every bar and line carries a ``<title>`` with its numbers, so
hovering shows them."""

from __future__ import annotations

import math
import xml.etree.ElementTree as ET
from collections.abc import Callable, Mapping, Sequence

from ndis_offload.viz.svg import SERIES, TONES, fmt, sub, svg_root, text_width

LEFT, RIGHT, TOP, BOTTOM = 64.0, 16.0, 36.0, 64.0
SIZE = 11.0


def nice_ticks(high: float, count: int = 5) -> list[float]:
    """Round tick values from 0 to at least ``high`` (1, 2, 5 x 10^k steps)."""
    if not high > 1e-9:  # nothing (or nothing measurable) to show: one unit
        return [0.0, 1.0]
    raw = high / count
    power = 10 ** math.floor(math.log10(raw))
    step = next(m * power for m in (1, 2, 5, 10) if m * power >= raw)
    return [i * step for i in range(int(math.ceil(high / step)) + 1)]


def log_ticks(high: float) -> list[float]:
    """0 and the powers of ten up to ``high`` (for counts spanning decades)."""
    out = [0.0]
    value = 1.0
    while value <= max(high, 1.0):
        out.append(value)
        value *= 10
    if out[-1] < high:
        out.append(value)
    return out


def human(value: float) -> str:
    """``1.2k``, ``3.4M``, ``512``: short axis labels."""
    for factor, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(value) >= factor:
            return f"{value / factor:.3g}{suffix}"
    return f"{value:.3g}"


def _frame(title: str, width: float, height: float) -> ET.Element:
    root = svg_root(width, height, title)
    sub(root, "text", title, x=LEFT, y=20, font_size=13, font_weight="bold")
    return root


def _y_axis(
    root: ET.Element, ticks: Sequence[float], to_y: Callable[[float], float], width: float,
    label: str,
) -> None:  # fmt: skip
    for tick in ticks:
        y = to_y(tick)
        sub(root, "line", x1=LEFT, y1=y, x2=width - RIGHT, y2=y, stroke=TONES["grid"],
            stroke_width=0.6)  # fmt: skip
        sub(root, "text", human(tick), x=LEFT - 6, y=y + 4, text_anchor="end", font_size=SIZE,
            fill=TONES["muted"])  # fmt: skip
    mid = (TOP + to_y(0)) / 2
    sub(root, "text", label, x=14, y=mid, font_size=SIZE, fill=TONES["muted"],
        text_anchor="middle", transform=f"rotate(-90 14 {fmt(mid)})")  # fmt: skip


LEGEND_ROW = 16.0


def _legend_rows(names: Sequence[str], width: float) -> list[list[tuple[int, str, float]]]:
    """Legend entries (series index, name, x) wrapped into rows that fit ``width``."""
    rows: list[list[tuple[int, str, float]]] = [[]]
    x = LEFT
    for index, name in enumerate(names):
        step = text_width(name, SIZE) + 26
        if rows[-1] and x + step > width - RIGHT:
            rows.append([])
            x = LEFT
        rows[-1].append((index, name, x))
        x += step
    return rows


def _legend(root: ET.Element, names: Sequence[str], width: float, y0: float) -> None:
    """Coloured swatches and series names, in rows from ``y0`` down."""
    for r, row in enumerate(_legend_rows(names, width)):
        y = y0 + LEGEND_ROW * r
        for index, name, x in row:
            sub(root, "rect", x=x, y=y - 9, width=10, height=10,
                fill=SERIES[index % len(SERIES)])  # fmt: skip
            sub(root, "text", name, x=x + 14, y=y, font_size=SIZE)


def _legend_height(names: Sequence[str], width: float) -> float:
    return LEGEND_ROW * len(_legend_rows(names, width)) if names else 0.0


def bar_chart(
    title: str,
    categories: Sequence[str],
    series: Mapping[str, Sequence[float]],
    *,
    y_label: str,
    log: bool = False,
    width: float = 900.0,
    height: float = 320.0,
) -> ET.Element:
    """Grouped bars: one group per category, one bar per series. ``log``: the y axis is
    log10(1 + value), so a bin of 3 frames stays visible beside one of 3 million."""
    high = max([max(v, default=0) for v in series.values()] + [0])
    scale: Callable[[float], float] = (lambda v: math.log10(1 + v)) if log else float
    ticks = log_ticks(high) if log else nice_ticks(high)
    top_value = scale(ticks[-1]) or 1.0
    base = height - BOTTOM
    root = _frame(title, width, height + _legend_height(list(series), width))

    def to_y(value: float) -> float:
        return base - (base - TOP) * scale(value) / top_value

    _y_axis(root, ticks, to_y, width, y_label)
    names = list(series)
    group = (width - LEFT - RIGHT) / max(len(categories), 1)
    bar = group * 0.8 / max(len(names), 1)
    for i, category in enumerate(categories):
        x0 = LEFT + group * i + group * 0.1
        for j, name in enumerate(names):
            value = float(series[name][i])
            y = to_y(value)
            rect = sub(root, "rect", x=x0 + bar * j, y=y, width=max(bar - 1, 1), height=base - y,
                       fill=SERIES[j % len(SERIES)])  # fmt: skip
            sub(rect, "title", f"{category} bytes, {name}: {value:,.0f}")
        cx = LEFT + group * (i + 0.5)
        sub(root, "text", category, x=cx, y=base + 14, font_size=SIZE - 1, text_anchor="end",
            transform=f"rotate(-35 {fmt(cx)} {fmt(base + 14)})")  # fmt: skip
    sub(root, "line", x1=LEFT, y1=base, x2=width - RIGHT, y2=base, stroke="#374151")
    _legend(root, names, width, height - 4)
    return root


def line_chart(
    title: str,
    x: Sequence[float],
    series: Mapping[str, Sequence[float]],
    *,
    x_label: str,
    y_label: str,
    width: float = 900.0,
    height: float = 300.0,
) -> ET.Element:
    """One polyline per series over a shared x (seconds); an empty ``series`` draws the axes
    and says there is nothing to draw."""
    high = max([max(v, default=0) for v in series.values()] + [0])
    ticks = nice_ticks(high)
    x_high = max(x[-1] if len(x) else 0.0, 1e-9)
    base = height - BOTTOM
    root = _frame(title, width, height + _legend_height(list(series), width))

    def to_y(value: float) -> float:
        return base - (base - TOP) * value / (ticks[-1] or 1.0)

    def to_x(value: float) -> float:
        return LEFT + (width - LEFT - RIGHT) * value / x_high

    _y_axis(root, ticks, to_y, width, y_label)
    for tick in nice_ticks(x_high, 8):
        if tick > x_high * 1.001:
            break
        sub(root, "text", f"{tick:.3g}", x=to_x(tick), y=base + 16, font_size=SIZE,
            text_anchor="middle", fill=TONES["muted"])  # fmt: skip
    sub(root, "text", x_label, x=(LEFT + width - RIGHT) / 2, y=base + 32, font_size=SIZE,
        text_anchor="middle", fill=TONES["muted"])  # fmt: skip
    sub(root, "line", x1=LEFT, y1=base, x2=width - RIGHT, y2=base, stroke="#374151")
    if not series:
        sub(root, "text", "nothing to draw", x=(LEFT + width) / 2, y=(TOP + base) / 2,
            text_anchor="middle", font_size=SIZE, fill=TONES["muted"])  # fmt: skip
    for j, (name, values) in enumerate(series.items()):
        points = " ".join(
            f"{fmt(to_x(a))},{fmt(to_y(float(b)))}" for a, b in zip(x, values, strict=True)
        )
        line = sub(root, "polyline", points=points, fill="none",
                   stroke=SERIES[j % len(SERIES)], stroke_width=1.5)  # fmt: skip
        peak = max(values, default=0)
        sub(line, "title", f"{name}: peak {human(float(peak))} {y_label}")
    _legend(root, list(series), width, height - 4)
    return root
