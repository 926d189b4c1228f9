"""LSO speed: ndis_offload.segment_tcp vs the same segmentation written with scapy and dpkt.

A 64 000-byte TCP send at MSS 1448, with and without TCP timestamps; every implementation
must produce byte-identical frames. Run: python benchmarks/bench_lso.py
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Callable
from functools import partial

import dpkt
import numpy as np
from scapy.layers.inet import IP, TCP
from scapy.layers.l2 import Ether
from scapy.packet import Raw

from ndis_offload.engine.transmit import segment_tcp

MSS = 1448
FIN_PSH = 0x09
CWR = 0x80


def best_of(func: Callable[[], object], repeat: int, number: int) -> float:
    """Best time per call in seconds."""
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        for _ in range(number):
            func()
        best = min(best, (time.perf_counter() - start) / number)
    return best


def segment_flags(flags: int, index: int, count: int) -> int:
    keep = flags & ~(FIN_PSH | CWR)
    if index == 0:
        keep |= flags & CWR
    if index == count - 1:
        keep |= flags & FIN_PSH
    return keep


def scapy_lso(frame: bytes, mss: int) -> list[bytes]:
    """Segmentation as a scapy user writes it: copy the headers, let scapy fill lengths/csums."""
    pkt = Ether(frame)
    data = bytes(pkt[TCP].payload)
    template = pkt.copy()
    template[TCP].remove_payload()
    count = max(1, -(-len(data) // mss))
    out = []
    for index in range(count):
        seg = template.copy()
        seg[IP].id = (pkt[IP].id + index) & 0xFFFF
        seg[IP].len = None
        seg[IP].chksum = None
        seg[TCP].seq = (pkt[TCP].seq + index * mss) & 0xFFFFFFFF
        seg[TCP].flags = segment_flags(int(pkt[TCP].flags), index, count)
        seg[TCP].chksum = None
        out.append(bytes(seg / Raw(data[index * mss : (index + 1) * mss])))
    return out


def dpkt_lso(frame: bytes, mss: int) -> list[bytes]:
    """Segmentation as a dpkt user writes it: build IP/TCP objects, dpkt fills the checksums."""
    eth = dpkt.ethernet.Ethernet(frame)
    ip, tcp = eth.data, eth.data.data
    data = bytes(tcp.data)
    count = max(1, -(-len(data) // mss))
    out = []
    for index in range(count):
        seg_tcp = dpkt.tcp.TCP(
            sport=tcp.sport,
            dport=tcp.dport,
            seq=(tcp.seq + index * mss) & 0xFFFFFFFF,
            ack=tcp.ack,
            flags=segment_flags(tcp.flags, index, count),
            win=tcp.win,
            urp=tcp.urp,
            opts=tcp.opts,
            data=data[index * mss : (index + 1) * mss],
        )
        seg_tcp.off = tcp.off
        seg_ip = dpkt.ip.IP(
            src=ip.src,
            dst=ip.dst,
            id=(ip.id + index) & 0xFFFF,
            ttl=ip.ttl,
            tos=ip.tos,
            df=ip.df,
            p=ip.p,
            opts=ip.opts,
            data=seg_tcp,
        )
        seg_ip.len = len(seg_ip)
        out.append(
            bytes(dpkt.ethernet.Ethernet(src=eth.src, dst=eth.dst, type=eth.type, data=seg_ip))
        )
    return out


def ours(frame: bytes, mss: int) -> list[bytes]:
    return segment_tcp(frame, mss).frames


def main() -> None:
    warnings.simplefilter("ignore")
    payload = np.random.default_rng(1448).integers(0, 256, 64_000, dtype=np.uint8).tobytes()
    print(
        f"{'LSO 64000 B @ MSS 1448':<34} {'ours (us)':>10} {'theirs (us)':>12} {'ratio':>9}  target"
    )
    for label, options in (
        ("no timestamps", []),
        ("timestamps", [("NOP", None), ("NOP", None), ("Timestamp", (7, 9))]),
    ):
        pkt = (
            Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02")
            / IP(src="192.0.2.1", dst="198.51.100.7", id=40000, flags="DF")
            / TCP(sport=49152, dport=443, seq=0xFFFF0000, ack=1, flags="PA", options=options)
            / payload
        )
        frame = bytes(pkt)
        expected = ours(frame, MSS)
        assert len(expected) == 45
        assert scapy_lso(frame, MSS) == expected, "scapy frames differ"
        assert dpkt_lso(frame, MSS) == expected, "dpkt frames differ"
        t_ours = best_of(partial(ours, frame, MSS), 7, 200)
        rivals: tuple[tuple[str, Callable[[bytes, int], list[bytes]], int, int], ...] = (
            ("scapy", scapy_lso, 300, 3),
            ("dpkt", dpkt_lso, 15, 20),
        )
        for name, impl, target, number in rivals:
            theirs = best_of(partial(impl, frame, MSS), 5, number)
            ratio = theirs / t_ours
            verdict = "ok" if ratio >= target else "BELOW TARGET"
            print(
                f"{label + ' vs ' + name:<34} {t_ours * 1e6:>10.1f} {theirs * 1e6:>12.1f} "
                f"{ratio:>8.1f}x  >= {target}x {verdict}"
            )


if __name__ == "__main__":
    main()
