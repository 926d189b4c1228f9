"""The capture tools' answers do not depend on how the file is cut into chunks (or pieces):
an MSS announced by a SYN applies to the frames after the SYN, and the MSS inferred from a
flow's largest ordinary payload counts the frames before the one being cut. This is what
lets a capture be processed by parts (``--workers``) with results identical to one pass."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scapy.layers.inet import IP, TCP
from scapy.layers.l2 import Ether
from scapy.utils import wrpcap

from ndis_offload.io import pcap_jobs
from ndis_offload.io.pcap_jobs import Options

MAC: dict[str, Any] = {"src": "02:00:00:00:00:01", "dst": "02:00:00:00:00:02"}
HOSTS = ("10.0.0.1", "10.0.0.2")

# (direction, kind, size): kind "syn" announces MSS = size; "data" carries size bytes
event_st = st.tuples(
    st.sampled_from([0, 1]),
    st.sampled_from(["syn", "data", "data", "data"]),
    st.integers(100, 4000),
)


def build(path: Path, events: list[tuple[int, str, int]]) -> None:
    frames = []
    for i, (direction, kind, size) in enumerate(events):
        src, dst = HOSTS if direction == 0 else HOSTS[::-1]
        sport, dport = (40000, 443) if direction == 0 else (443, 40000)
        ip = IP(src=src, dst=dst, id=i)
        if kind == "syn":
            tcp = TCP(sport=sport, dport=dport, flags="SA" if direction else "S",
                      options=[("MSS", size)])  # fmt: skip
            frame = Ether(**MAC) / ip / tcp
        else:
            frame = Ether(**MAC) / ip / TCP(sport=sport, dport=dport, flags="A") / bytes(size)
        frame.time = 1_700_000_000 + i / 1000
        frames.append(frame)
    wrpcap(str(path), frames)


def summary(result: pcap_jobs.JobResult) -> dict[str, Any]:
    a = result.analyzer
    return {
        "totals": a.totals,
        "flows": {
            k: (s.key, s.frames, s.bytes, s.counts, s.max_payload) for k, s in a.flows.items()
        },
        "sizes_after": a.sizes_after.tolist(),
        "notable": [(n.index, int(n.diagnosis), n.detail) for n in a.notable],
    }


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(events=st.lists(event_st, min_size=2, max_size=40), small=st.integers(200, 3000))
def test_verify_and_segment_do_not_depend_on_chunk_size(
    tmp_path: Path, events: list[tuple[int, str, int]], small: int
) -> None:
    src = tmp_path / "in.pcap"
    build(src, events)
    big = Options(chunk_bytes=1 << 20)
    tiny = Options(chunk_bytes=small)
    assert summary(pcap_jobs.verify(src, big)) == summary(pcap_jobs.verify(src, tiny))
    pcap_jobs.segment(src, tmp_path / "a.pcap", big)
    pcap_jobs.segment(src, tmp_path / "b.pcap", tiny)
    assert (tmp_path / "a.pcap").read_bytes() == (tmp_path / "b.pcap").read_bytes()
