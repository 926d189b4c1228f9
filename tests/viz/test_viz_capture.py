"""The capture pictures: the timeline's bins against numpy's histogram of every timestamp
(however the frames are chunked), the chart geometry against the numbers drawn, and
``pcap stats --html/--svg`` against ``pcap stats --json`` of the same capture."""

from __future__ import annotations

import io
import json
import math
import xml.etree.ElementTree as ET
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from rich.console import Console
from scapy.layers.inet import IP, TCP, UDP
from scapy.layers.l2 import Ether
from scapy.utils import wrpcap

from ndis_offload.capture.analyze import N_DIAG, size_bin_labels
from ndis_offload.capture.timeline import FIRST_WIDTH, Timeline
from ndis_offload.cli.main import main
from ndis_offload.packet.checksum import pseudo_header_sum_ipv4
from ndis_offload.viz.charts import bar_chart, line_chart, nice_ticks
from ndis_offload.viz.svg import to_inline

SVG = "{http://www.w3.org/2000/svg}"


@given(
    times=st.lists(st.floats(0, 5000, allow_nan=False), min_size=1, max_size=300),
    cuts=st.lists(st.integers(0, 300), max_size=6),
    bins=st.sampled_from([2, 8, 64, 240]),
)
def test_timeline_bins_match_numpy_histogram_whatever_the_chunks(
    times: list[float], cuts: list[int], bins: int
) -> None:
    t = np.array(times, dtype=np.float64) + 1.7e9  # absolute capture time
    n = len(t)
    rng = np.random.default_rng(n)
    flows = rng.integers(0, 4, n).astype(np.uint64)
    sizes = rng.integers(60, 9000, n).astype(np.int64)
    diag = rng.integers(0, N_DIAG, n).astype(np.int8)
    timeline = Timeline(bins=bins, max_flows=2)
    edges = sorted({0, n, *[c for c in cuts if c < n]})
    for lo, hi in zip(edges, edges[1:], strict=False):
        timeline.feed(t[lo:hi], flows[lo:hi], sizes[lo:hi], diag[lo:hi])
    # the oracle: every frame binned at the final width, from the first frame's time
    rel = np.maximum(t - t[0], 0.0)
    assert timeline.width >= FIRST_WIDTH and timeline.last == pytest.approx(rel.max())
    assert rel.max() < timeline.width * bins
    index = np.minimum((rel / timeline.width).astype(np.int64), bins - 1)
    for d in range(N_DIAG):
        expected = np.bincount(index[diag == d], minlength=bins)
        assert timeline.frames[:, d].tolist() == expected.tolist()
        weights = np.bincount(index[diag == d], weights=sizes[diag == d], minlength=bins)
        assert timeline.bytes[:, d].tolist() == weights.astype(np.int64).tolist()
    tracked = sum(timeline.flow_bytes.values(), np.zeros(bins, dtype=np.int64))
    with_flow = flows != 0
    expected_flows = np.bincount(index[with_flow], weights=sizes[with_flow], minlength=bins)
    assert (tracked + timeline.other_bytes).tolist() == expected_flows.astype(np.int64).tolist()
    assert len(timeline.flow_bytes) <= 2
    assert timeline.used == min(bins, int(rel.max() / timeline.width) + 1)


def test_timeline_rejects_odd_bins() -> None:
    with pytest.raises(ValueError):
        Timeline(bins=3)


@given(high=st.floats(0, 1e12, allow_nan=False), count=st.integers(2, 10))
def test_nice_ticks_cover_the_range_in_round_steps(high: float, count: int) -> None:
    ticks = nice_ticks(high, count)
    assert ticks[0] == 0 and ticks[-1] >= high
    steps = {round(b - a, 6) for a, b in zip(ticks, ticks[1:], strict=False)}
    step = ticks[1] - ticks[0]
    mantissa = step / 10 ** math.floor(math.log10(step))
    assert round(mantissa, 6) in (1, 2, 5, 10) and len(steps) <= 2  # float noise only
    assert len(ticks) <= 2 * count + 2


def _rects(root: ET.Element) -> list[ET.Element]:
    return [r for r in root.iter(f"{SVG}rect") if r.find(f"{SVG}title") is not None]


def test_bar_heights_are_proportional_to_the_values() -> None:
    values = {"a": [0, 10, 25], "b": [5, 50, 1]}
    root = ET.fromstring(to_inline(bar_chart("t", ["x", "y", "z"], values, y_label="frames")))
    rects = _rects(root)
    assert len(rects) == 6
    heights = {(r.find(f"{SVG}title").text or ""): float(r.get("height", "0"))  # type: ignore[union-attr]
               for r in rects}  # fmt: skip
    unit = heights["y bytes, b: 50"] / 50
    for title, height in heights.items():
        value = float(title.rsplit(": ", 1)[1].replace(",", ""))
        assert height == pytest.approx(value * unit, abs=0.2)


def test_line_chart_draws_every_point_in_order() -> None:
    x = [0.0, 1.0, 2.0, 3.0]
    root = ET.fromstring(to_inline(line_chart("t", x, {"s": [1.0, 4.0, 2.0, 0.0]}, x_label="s",
                                              y_label="v")))  # fmt: skip
    (line,) = list(root.iter(f"{SVG}polyline"))
    points = [tuple(map(float, p.split(","))) for p in (line.get("points") or "").split()]
    assert len(points) == 4
    assert [p[0] for p in points] == sorted(p[0] for p in points)
    ys = [p[1] for p in points]  # SVG y grows downwards
    assert ys[1] < ys[2] < ys[0] < ys[3]
    empty = ET.fromstring(to_inline(line_chart("t", [], {}, x_label="s", y_label="v")))
    assert "nothing to draw" in [t.text for t in empty.iter(f"{SVG}text")]


def capture(path: Path) -> Path:
    """Three flows over two seconds: LSO sends with checksums left for offload, correct
    frames, and a UDP flow; timestamps set so the timeline has something to draw."""
    frames = []
    mac: dict[str, Any] = {"src": "02:00:00:00:00:01", "dst": "02:00:00:00:00:02"}
    for i in range(40):
        big = i % 10 == 0
        size = 20000 if big else 1448
        left = big or i % 7 == 0  # checksums left for offload: IP 0, TCP the pseudo-header sum
        l4 = pseudo_header_sum_ipv4(bytes([192, 0, 2, 1]), bytes([198, 51, 100, 2]), 6,
                                    None if big else 20 + size)  # fmt: skip
        ip = IP(src="192.0.2.1", dst="198.51.100.2", chksum=0 if left else None)
        tcp = Ether(**mac) / ip / TCP(sport=40000, dport=443, seq=1000 + i * 1448, flags="A",
                                      chksum=l4 if left else None) / (b"x" * size)  # fmt: skip
        tcp.time = 1_700_000_000 + i * 0.05
        frames.append(tcp)
        udp = Ether(**mac) / IP(src="192.0.2.9", dst="198.51.100.7") / UDP(sport=53, dport=5353) / (
            b"u" * 100)  # fmt: skip
        udp.time = 1_700_000_000 + i * 0.05 + 0.01
        frames.append(udp)
    wrpcap(str(path), frames)
    return path


class Text(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.text: list[str] = []
        self.rows = 0
        self.section = ""

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "section":
            self.section = dict(attrs).get("id") or ""
        if tag == "tr" and self.section == "flows":
            self.rows += 1

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def test_pcap_stats_html_and_svg_agree_with_json(tmp_path: Path) -> None:
    path = capture(tmp_path / "c.pcap")
    page, svg = tmp_path / "s.html", tmp_path / "s.svg"
    out = io.StringIO()
    code = main(["pcap", "stats", str(path), "--html", str(page), "--svg", str(svg)],
                console=Console(file=out, width=120))  # fmt: skip
    assert code == 0
    json_out = io.StringIO()
    main(["pcap", "stats", str(path), "--json"], console=Console(file=json_out, width=120))
    data = json.loads(json_out.getvalue())
    parsed = Text()
    parsed.feed(page.read_text())
    text = " ".join(parsed.text)
    assert parsed.rows == 1 + len(data["flows"])  # header + one row per flow
    for flow in data["flows"]:
        assert flow["flow"] in text
    for label, count in data["diagnosis"].items():
        if count:
            assert label in text
    root = ET.parse(svg).getroot()
    titles = [t.text or "" for t in root.iter(f"{SVG}title")]
    captured = sum(int(t.rsplit(": ", 1)[1].replace(",", "")) for t in titles
                   if ", captured: " in t)  # fmt: skip
    wire = sum(int(t.rsplit(": ", 1)[1].replace(",", "")) for t in titles
               if ", on the wire (segment): " in t)  # fmt: skip
    assert captured == sum(data["size_histogram"]["captured"]) == data["frames"]
    assert wire == sum(data["size_histogram"]["wire"])
    assert wire > captured  # the 20000-byte sends are cut into MSS-sized segments
    labels = [t.text or "" for t in root.iter(f"{SVG}text")]
    assert any(label.startswith("TCP 192.0.2.1:40000 > 198.51.100.2:443") for label in labels)
    assert "unsegmented LSO send" in labels and "left for offload" in labels


def burst(path: Path) -> Path:
    """Receives RSC can merge: bursts of back-to-back MSS segments (10 us apart) on two
    flows, bursts 5 ms apart, and a UDP frame between."""
    frames = []
    mac: dict[str, Any] = {"src": "02:00:00:00:00:02", "dst": "02:00:00:00:00:01"}
    seq = {443: 1, 8443: 1}
    t = 1_700_000_000.0
    for b in range(6):
        for i in range(12):
            port = 443 if i % 3 else 8443
            pkt = Ether(**mac) / IP(src="198.51.100.2", dst="192.0.2.1") / TCP(
                sport=port, dport=40000, seq=seq[port], flags="A") / (b"r" * 1448)  # fmt: skip
            seq[port] += 1448
            pkt.time = t + b * 0.005 + i * 0.00001
            frames.append(pkt)
        udp = Ether(**mac) / IP(src="198.51.100.2", dst="192.0.2.1") / UDP() / b"x"
        udp.time = t + b * 0.005 + 0.001
        frames.append(udp)
    wrpcap(str(path), frames)
    return path


def test_after_rsc_sizes_are_what_pcap_coalesce_writes(tmp_path: Path) -> None:
    path = burst(tmp_path / "rx.pcap")
    merged = tmp_path / "merged.pcap"
    assert main(["pcap", "coalesce", str(path), str(merged)],
                console=Console(file=io.StringIO()))  == 0  # fmt: skip
    out = io.StringIO()
    main(["pcap", "stats", str(merged), "--json"], console=Console(file=out))
    written = json.loads(out.getvalue())["size_histogram"]["captured"]
    svg = tmp_path / "s.svg"
    assert main(["pcap", "stats", str(path), "--svg", str(svg)],
                console=Console(file=io.StringIO())) == 0  # fmt: skip
    titles = [t.text or "" for t in ET.parse(svg).getroot().iter(f"{SVG}title")]
    drawn = {t.split(" bytes,")[0]: int(t.rsplit(": ", 1)[1].replace(",", ""))
             for t in titles if ", after RSC (coalesce): " in t}  # fmt: skip
    labels = size_bin_labels()
    expected = {labels[i]: n for i, n in enumerate(written) if n}
    assert expected == {k: v for k, v in drawn.items() if v}
    assert sum(written) < 6 * 13  # RSC did merge


def test_pictures_of_a_cluster_run_match_one_pass(tmp_path: Path) -> None:
    pytest.importorskip("distributed", reason="the dask extra is not installed")
    path = capture(tmp_path / "c.pcap")
    one, many = tmp_path / "one.svg", tmp_path / "many.svg"
    quiet = Console(file=io.StringIO())
    assert main(["pcap", "stats", str(path), "--svg", str(one)], console=quiet) == 0
    code = main(["pcap", "stats", str(path), "--svg", str(many), "--workers", "2"], console=quiet)
    assert code == 0

    def lines(svg: Path) -> list[str | None]:
        return [p.get("points") for p in ET.parse(svg).getroot().iter(f"{SVG}polyline")]

    assert lines(many) == lines(one) and lines(one)  # timeline: identical, in frame order
    titles = [t.text or "" for t in ET.parse(many).getroot().iter(f"{SVG}text")]
    assert any("after RSC not computed on a cluster" in t for t in titles)
    assert not any("after RSC (coalesce)" in t for t in titles)
