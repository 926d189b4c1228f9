"""Shared pieces of the robustness tests: sample captures, CLI runners, leftover checks."""

from __future__ import annotations

import io
import os
import signal
import struct
import subprocess
import sys
from pathlib import Path
from typing import Any

import dpkt
from rich.console import Console
from scapy.layers.inet import IP, TCP, UDP
from scapy.layers.inet6 import IPv6
from scapy.layers.l2 import ARP, Dot1Q, Ether
from scapy.utils import RawPcapNgReader

from ndis_offload.cli.main import main
from ndis_offload.io.atomic import TEMP_TAG

MAC: dict[str, Any] = {"src": "02:00:00:00:00:01", "dst": "02:00:00:00:00:02"}
A4, B4 = "192.0.2.1", "198.51.100.2"
SRC = Path(__file__).resolve().parents[2] / "src"


def sample_frames() -> list[bytes]:
    """Frames with offload artifacts: checksums left for offload, an LSO send, a coalesced
    receive, IPv6, UDP, VLAN, ARP."""
    out = [bytes(Ether(**MAC) / IP(src=B4, dst=A4) / TCP(sport=443, dport=40000, flags="SA",
                                                         options=[("MSS", 1448)]))]  # fmt: skip
    seq = 1000
    for size in (1448, 6000, 700, 1448):
        pkt = Ether(**MAC) / IP(src=A4, dst=B4, chksum=0) / TCP(
            sport=40000, dport=443, seq=seq, flags="PA", chksum=0x1234
        ) / (b"x" * size)  # fmt: skip
        out.append(bytes(pkt))
        seq += size
    out.append(bytes(Ether(**MAC) / Dot1Q(vlan=7) / IP(src=A4, dst=B4) / UDP(sport=1, dport=2)
                     / (b"u" * 100)))  # fmt: skip
    out.append(bytes(Ether(**MAC) / IPv6(src="2001:db8::1", dst="2001:db8::2")
                     / TCP(sport=7, dport=8, flags="PA") / (b"6" * 3000)))  # fmt: skip
    out.append(bytes(Ether(**MAC) / ARP()))
    return out


def pcap_of(frames: list[bytes], *, linktype: int = 1, stamps: list[tuple[int, int]] | None = None,
            nano: bool = False) -> bytes:  # fmt: skip
    """A little-endian pcap file of ``frames`` (``stamps``: raw (seconds, fraction) fields)."""
    magic = 0xA1B23C4D if nano else 0xA1B2C3D4
    out = [struct.pack("<IHHiIII", magic, 2, 4, 0, 0, 262144, linktype)]
    for i, frame in enumerate(frames):
        sec, frac = stamps[i] if stamps else (1_700_000_000 + i // 3, (i % 3) * 1000)
        out.append(struct.pack("<IIII", sec, frac, len(frame), len(frame)) + frame)
    return b"".join(out)


def _block(btype: int, body: bytes) -> bytes:
    body += bytes(-len(body) % 4)
    size = 12 + len(body)
    return struct.pack("<II", btype, size) + body + struct.pack("<I", size)


def pcapng_section(frames: list[bytes], *, first_ts: int = 1_700_000_000_000_000) -> bytes:
    """One pcapng section: SHB, an Ethernet IDB and an EPB (with a comment) per frame."""
    shb = _block(0x0A0D0D0A, struct.pack("<IHHq", 0x1A2B3C4D, 1, 0, -1))
    idb = _block(1, struct.pack("<HHI", 1, 0, 262144) + struct.pack("<HH", 0, 0))
    out = [shb, idb]
    for i, frame in enumerate(frames):
        ts = first_ts + i * 1000
        comment = f"frame {i}".encode()
        opts = struct.pack("<HH", 1, len(comment)) + comment + bytes(-len(comment) % 4)
        opts += struct.pack("<HH", 0, 0)
        body = struct.pack("<IIIII", 0, ts >> 32, ts & 0xFFFFFFFF, len(frame), len(frame))
        out.append(_block(6, body + frame + bytes(-len(frame) % 4) + opts))
    return b"".join(out)


def run_cli(*argv: str) -> tuple[int, str, str]:
    """``main`` in this process with separate stdout / stderr consoles."""
    out, err = io.StringIO(), io.StringIO()
    code = main(
        list(argv),
        console=Console(file=out, width=120, emoji=False),
        error_console=Console(file=err, width=200, emoji=False),
    )
    return code, out.getvalue(), err.getvalue()


def child_env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(SRC) + os.pathsep + env.get("PYTHONPATH", "")
    return env


def _default_signals() -> None:
    """In the child before exec: SIGINT and SIGHUP at their defaults, as from a terminal. The
    CLI keeps a signal its parent ignores (``nohup``; ``&`` in a non-interactive shell ignores
    SIGINT), so a test run started that way would otherwise see no handler."""
    for signum in (signal.SIGINT, signal.SIGHUP):
        signal.signal(signum, signal.SIG_DFL)


def spawn(*argv: str, **kwargs: Any) -> subprocess.Popen[bytes]:
    """The real command in a child process (``python -m ndis_offload.cli.main``), with the
    signal dispositions of a terminal session."""
    return subprocess.Popen(
        [sys.executable, "-m", "ndis_offload.cli.main", *argv], env=child_env(),
        preexec_fn=_default_signals, **kwargs,
    )  # fmt: skip


def temporaries(directory: Path) -> list[str]:
    """Temporary output files left in ``directory``."""
    return sorted(p.name for p in directory.iterdir() if f".{TEMP_TAG}-" in p.name)


def reads_back(path: Path) -> int:
    """Records in ``path`` as an independent reader sees them (dpkt for pcap, scapy for pcapng:
    dpkt rejects option text that is not UTF-8, which damaged inputs carry verbatim); raises
    if it cannot read the file."""
    data = path.read_bytes()
    if data[:4] == b"\x0a\x0d\x0d\x0a":
        with RawPcapNgReader(str(path)) as reader:
            return sum(1 for _ in reader)
    return sum(1 for _ in dpkt.pcap.Reader(io.BytesIO(data)))
