"""RSC output against an oracle that does not use the engine's parser or rules.

Random in-order flows (LSO-cut sends over IPv4 / IPv6, untagged, 802.1Q or QinQ, with or
without timestamps, PSH at each send's end) are interleaved and handed to ``push_batch`` in
random DPC batches. scapy parses every indicated frame; per flow the payloads must
reassemble to exactly the bytes sent, every checksum must be valid (scapy and dpkt
recompute them; tshark validates them when installed), and each coalesced unit's fields are
recomputed from the input segments it covers, as the NDIS pages say: "Indicating coalesced
segments" (``CoalescedSegCount`` = data segments, ``DupAckCount``, ``RscTcpTimestampDelta``,
the checksum flags), "Updating the IP headers for coalesced segments" (first IPv4 ID,
minimum TTL / Hop Limit, lengths) and "Rules for coalescing TCP/IP packets" (the last ACK
and window, PSH ORed and ending the unit, at most 65535 bytes)."""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scapy.layers.inet import IP, TCP
from scapy.layers.inet6 import IPv6
from scapy.layers.l2 import Dot1AD, Dot1Q, Ether
from scapy.packet import Packet
from scapy.utils import wrpcap
from test_rsc import verify

from ndis_offload.engine.rsc import CoalescedFrame, RscCoalescer
from ndis_offload.engine.rsc_fast import scan
from ndis_offload.engine.transmit import segment_tcp

TSHARK = shutil.which("tshark")
ETH = Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02")
LINKS = ("plain", "vlan", "qinq")


@dataclass(frozen=True)
class Sent:
    """One input segment as the oracle sees it (scapy's reading of the frame)."""

    seq: int
    payload: bytes
    ack: int
    window: int
    psh: bool
    ttl: int
    ip_id: int
    tsval: int | None


@st.composite
def flow_spec(draw: st.DrawFn) -> tuple[bool, str, bool, int, list[int], bool]:
    v6 = draw(st.booleans())
    link = draw(st.sampled_from(LINKS))
    ts = draw(st.booleans())
    mss = draw(st.sampled_from([536, 1200, 1447, 1448, 8960]))
    sends = draw(st.lists(st.integers(1, 65_000), min_size=1, max_size=3))
    return v6, link, ts, mss, sends, draw(st.booleans())


Spec = tuple[bool, str, bool, int, list[int], bool]
"""IPv6, link, timestamps, MSS, send sizes, PSH at each send's end."""


def build(index: int, spec: Spec) -> list[bytes]:
    """The frames of one flow: each send cut by the engine's LSO (a transmit-side tool; the
    oracle below reads every frame back with scapy)."""
    v6, link, ts, mss, sends, psh = spec
    l2: Packet = {
        "plain": ETH.copy(),
        "vlan": ETH / Dot1Q(vlan=10 + index),
        "qinq": ETH / Dot1AD(vlan=7) / Dot1Q(vlan=10 + index),
    }[link]
    seq = 1000 * index
    frames: list[bytes] = []
    for number, size in enumerate(sends):
        ip: Packet = (
            IPv6(src="2001:db8::1", dst="2001:db8::2", hlim=64 - number)
            if v6
            else IP(src="192.0.2.1", dst="198.51.100.7", flags="DF", id=100 * index + number,
                    ttl=64 - number)
        )  # fmt: skip
        options = [("NOP", None), ("NOP", None), ("Timestamp", (50 + number, 9))] if ts else []
        tcp = TCP(sport=40000 + index, dport=443, seq=seq, ack=7 + number,
                  flags="PA" if psh else "A",
                  window=1000 + number, options=options)  # fmt: skip
        data = bytes((seq + i * 13) & 0xFF for i in range(size))
        frames += segment_tcp(bytes(l2 / ip / tcp / data), mss).frames
        seq = (seq + size) & 0xFFFFFFFF
    return frames


def read(frame: bytes) -> tuple[tuple[object, ...], Sent]:
    """(flow, segment) of a frame, by scapy."""
    pkt = Ether(frame)
    tcp = pkt[TCP]
    ip = pkt[IP] if IP in pkt else pkt[IPv6]
    ttl = ip.ttl if IP in pkt else ip.hlim
    ip_id = ip.id if IP in pkt else 0
    tsval = next((value[0] for name, value in tcp.options if name == "Timestamp"), None)
    flow = (ip.src, ip.dst, tcp.sport, tcp.dport, Dot1Q in pkt and pkt[Dot1Q].vlan)
    sent = Sent(tcp.seq, bytes(tcp.payload), tcp.ack, tcp.window, bool(tcp.flags & 0x08), ttl,
                ip_id, tsval)  # fmt: skip
    return flow, sent


def check_against_oracle(frames: list[bytes], out: list[CoalescedFrame]) -> int:
    """Assert every rule above; returns the number of coalesced units seen."""
    sent: dict[tuple[object, ...], list[Sent]] = {}
    raw: dict[tuple[tuple[object, ...], int], bytes] = {}
    for frame in frames:
        flow, segment = read(frame)
        sent.setdefault(flow, []).append(segment)
        raw[flow, segment.seq] = frame
    cursor = dict.fromkeys(sent, 0)
    coalesced = 0
    for item in out:
        verify(item.frame)  # checksums: scapy rebuilds them, dpkt sums them
        flow, got = read(item.frame)
        inputs = sent[flow]
        first = cursor[flow]
        assert inputs[first].seq == got.seq, "segments lost, duplicated or reordered"
        last, size = first, len(inputs[first].payload)
        while size < len(got.payload):
            last += 1
            size += len(inputs[last].payload)
        covered = inputs[first : last + 1]
        assert b"".join(s.payload for s in covered) == got.payload
        cursor[flow] = last + 1
        count = len(covered)
        assert item.rsc.CoalescedSegCount == (count if count > 1 else 0)
        assert item.rsc.DupAckCount == 0
        assert item.checksum.TcpChecksumSucceeded
        if count == 1:  # indicated as received, with its own checksum verdicts
            assert item.frame == raw[flow, got.seq]
            assert bool(item.checksum.IpChecksumSucceeded) == (IP in Ether(item.frame))
            continue
        coalesced += 1
        assert item.checksum.IpChecksumSucceeded  # an SCU: IP and TCP "succeeded" flags
        assert (got.ack, got.window) == (covered[-1].ack, covered[-1].window)
        assert got.psh == any(s.psh for s in covered)
        assert not any(s.psh for s in covered[:-1]), "PSH ends a unit (flush_on_psh)"
        assert got.ttl == min(s.ttl for s in covered)
        assert got.ip_id == covered[0].ip_id
        if covered[0].tsval is not None:
            assert got.tsval == covered[-1].tsval
            assert item.timestamp_delta == (covered[-1].tsval - covered[0].tsval) & 0xFFFFFFFF  # type: ignore[operator]
        pkt = Ether(item.frame)
        datagram = bytes(pkt[IP] if IP in pkt else pkt[IPv6])
        assert len(datagram) <= 0xFFFF, "exception E7: at most 65535 bytes"
    assert all(cursor[flow] == len(inputs) for flow, inputs in sent.items()), "data lost"
    return coalesced


def interleave(flows: list[list[bytes]], picks: list[int]) -> list[bytes]:
    cursors = [0] * len(flows)
    out: list[bytes] = []
    pick = iter(picks)
    while any(c < len(f) for c, f in zip(cursors, flows, strict=True)):
        live = [i for i, f in enumerate(flows) if cursors[i] < len(f)]
        chosen = live[next(pick, 0) % len(live)]
        out.append(flows[chosen][cursors[chosen]])
        cursors[chosen] += 1
    return out


def coalesce(frames: list[bytes], batch: int) -> list[CoalescedFrame]:
    rsc = RscCoalescer(timeout=1.0)
    out: list[CoalescedFrame] = []
    for start in range(0, len(frames), batch):
        out += rsc.push_batch(frames[start : start + batch], 0.0)
    return out + rsc.flush()


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(flow_spec(), min_size=1, max_size=4),
    st.lists(st.integers(0, 3), max_size=400),
    st.sampled_from([1, 7, 64, 256]),
)
def test_coalesced_output_matches_the_oracle(
    specs: list[Spec], picks: list[int], batch: int
) -> None:
    frames = interleave([build(i, spec) for i, spec in enumerate(specs)], picks)
    out = coalesce(frames, batch)
    check_against_oracle(frames, out)
    single = RscCoalescer(timeout=1.0)
    assert out == [o for f in frames for o in single.push(f, 0.0)] + single.flush()


def bulk_frames() -> list[bytes]:
    specs: list[Spec] = [
        (False, "plain", True, 1448, [64_000, 64_000], True),
        (True, "vlan", True, 1448, [50_000], True),
        (False, "qinq", False, 1200, [65_000], True),
        (True, "plain", False, 8960, [65_000], True),
        (False, "vlan", True, 1448, [30_000, 30_000, 30_000], False),  # exception E7
    ]
    flows = [build(i, spec) for i, spec in enumerate(specs)]
    return interleave(flows, list(range(1000)))


def test_bulk_flows_coalesce_fully() -> None:
    """Big sends: units of up to 65535 bytes, each send's PSH ends its last unit; 90,000
    bytes without PSH are cut by exception E7."""
    frames = bulk_frames()
    out = coalesce(frames, 64)
    assert check_against_oracle(frames, out) == 5 + 2
    # Up to four link / IP layouts per batch, every segment takes the vectorized scan.
    four = [
        f for f in frames if not (Dot1Q in Ether(f) and IP in Ether(f) and Dot1AD not in Ether(f))
    ]
    for start in range(0, len(four), 64):
        batch = four[start : start + 64]
        assert scan(batch).table.shape[1] == len(batch)
    assert max(o.rsc.CoalescedSegCount for o in out) >= 40


@pytest.mark.skipif(TSHARK is None, reason="tshark is not installed (apt-get install tshark)")
def test_tshark_validates_every_coalesced_checksum(tmp_path: Path) -> None:
    """Wireshark's own IPv4 / TCP checksum validation accepts every indicated frame."""
    assert TSHARK is not None
    out = coalesce(bulk_frames(), 64)
    capture = tmp_path / "rsc.pcap"
    wrpcap(str(capture), [Ether(o.frame) for o in out])
    result = subprocess.run(
        [TSHARK, "-n", "-r", str(capture), "-o", "ip.check_checksum:TRUE",
         "-o", "tcp.check_checksum:TRUE", "-T", "fields", "-e", "frame.number",
         "-e", "ip.checksum.status", "-e", "tcp.checksum.status"],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    rows = [line.split("\t") for line in result.stdout.splitlines()]
    assert len(rows) == len(out)
    # checksum.status: 0 = bad, 1 = good, 2 = unverified
    assert [row for row in rows if "0" in row[1:]] == []
    assert all(row[2] == "1" for row in rows), "tshark verified every TCP checksum"
    assert sum(row[1] == "1" for row in rows) >= len(out) // 2, "and the IPv4 ones"
