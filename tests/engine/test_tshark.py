"""Wireshark's own checksum validation accepts every frame the transmit engine emits."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
from scapy.layers.inet import IP, TCP, UDP, IPOption_NOP
from scapy.layers.inet6 import IPv6, IPv6ExtHdrDestOpt
from scapy.layers.l2 import Dot1Q, Ether
from scapy.utils import wrpcap

from ndis_offload.engine import insert_checksums, segment_tcp, segment_udp

TSHARK = shutil.which("tshark")


def engine_frames() -> list[bytes]:
    v4 = Ether() / IP(src="10.1.0.1", dst="10.1.0.2", options=[IPOption_NOP()] * 4)
    v6 = Ether() / IPv6(src="fd00::1", dst="fd00::2") / IPv6ExtHdrDestOpt()
    vlan = Ether() / Dot1Q(vlan=7) / IP(src="10.2.0.1", dst="10.2.0.2")
    ts = [("Timestamp", (1, 2))]
    frames: list[bytes] = []
    for base in (v4, v6, vlan):
        giant = bytes(base / TCP(sport=40000, dport=80, flags="PA", options=ts) / (b"z" * 9001))
        frames += segment_tcp(giant, 1448).frames
        big_udp = bytes(base / UDP(sport=5353, dport=53) / (b"u" * 5000))
        frames += segment_udp(big_udp, 1200).frames
        odd = bytes(base / UDP(sport=1, dport=2, chksum=0x1234) / b"odd")
        frames.append(insert_checksums(odd))
        frames.append(insert_checksums(bytes(base / TCP(chksum=0) / b"")))
    return frames


@pytest.mark.skipif(TSHARK is None, reason="tshark is not installed (apt-get install tshark)")
def test_tshark_validates_every_engine_checksum(tmp_path: Path) -> None:
    capture = tmp_path / "engine.pcap"
    frames = engine_frames()
    wrpcap(str(capture), [Ether(f) for f in frames])
    assert TSHARK is not None
    result = subprocess.run(
        [
            TSHARK,
            "-n",
            "-r",
            str(capture),
            "-o",
            "ip.check_checksum:TRUE",
            "-o",
            "tcp.check_checksum:TRUE",
            "-o",
            "udp.check_checksum:TRUE",
            "-T",
            "fields",
            "-e",
            "frame.number",
            "-e",
            "ip.checksum.status",
            "-e",
            "tcp.checksum.status",
            "-e",
            "udp.checksum.status",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    rows = [line.split("\t") for line in result.stdout.splitlines()]
    assert len(rows) == len(frames)
    # checksum.status: 0 = bad, 1 = good, 2 = unverified (tshark's expert field values)
    bad = [row for row in rows if any(field == "0" for field in row[1:])]
    assert bad == [], f"tshark reports bad checksums: {bad}"
    good = sum(field == "1" for row in rows for field in row[1:])
    assert good >= len(frames), "tshark did not verify the checksums"


# -- pcap verify / fix against tshark and tcprewrite (issue 8) ------------------------------

import struct  # noqa: E402
import sys  # noqa: E402
from collections import Counter  # noqa: E402
from typing import Any  # noqa: E402

from frame_recipes import IPS, LINKS, TRANSPORTS, TUNNELS, inner_ip, link, tunnel  # noqa: E402

VECTORS = Path(__file__).parent.parent / "vectors" / "tcpdump"
TCPREWRITE = shutil.which("tcprewrite")
TSHARK_OPTS = ["-o", "ip.check_checksum:TRUE", "-o", "tcp.check_checksum:TRUE",
               "-o", "udp.check_checksum:TRUE"]  # fmt: skip
ERRORS = {"wrong checksum", "malformed"}
OFFLOAD = {"left for offload", "unsegmented LSO send", "coalesced receive"}


def write_pcap(path: Path, linktype: int, records: list[tuple[bytes, int]]) -> None:
    """A pcap of (captured bytes, wire length) records."""
    out = bytearray(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 262144, linktype))
    for i, (data, wire) in enumerate(records):
        out += struct.pack("<IIII", 1_700_000_000 + i, i, len(data), wire) + data
    path.write_bytes(bytes(out))


def spoil(data: bytes, field: int, how: int) -> bytes:
    buf = bytearray(data)
    buf[field : field + 2] = b"\0\0" if how == 0 else b"\xbe\xef"
    return bytes(buf)


def built_captures(tmp: Path) -> list[Path]:
    """Every tunnel over IPv4 / IPv6, VLAN stacks, raw links, BIG TCP, cut headers,
    fragments; some checksums spoiled (0 or garbage) in outer or inner layers."""
    from ndis_offload.packet.locate import Layer, locate

    by_link: dict[int, list[tuple[bytes, int]]] = {}
    n = 0
    for name in TUNNELS:
        for outer in ("ip4", "ip6"):
            for ip in IPS:
                for transport in ("tcp", "udp"):
                    _, frame = link("eth", tunnel(name, inner_ip(ip, TRANSPORTS[transport](40)),
                                                  outer))  # fmt: skip
                    by_link.setdefault(1, []).append((frame, len(frame)))
    for name in LINKS:
        for ip in IPS:
            for transport in sorted(TRANSPORTS):
                linktype, frame = link(name, inner_ip(ip, TRANSPORTS[transport](100)))
                by_link.setdefault(linktype, []).append((frame, len(frame)))
    out = []
    for linktype, records in by_link.items():
        varied = []
        for data, wire in records:
            n += 1
            found = locate(data, linktype)
            fields = [
                h.offset + {Layer.IPV4: 10, Layer.TCP: 16, Layer.UDP: 6}[h.kind]
                for h in found.hops
                if h.kind in (Layer.IPV4, Layer.TCP, Layer.UDP)
            ]
            varied.append((data, wire))
            if fields:
                varied.append((spoil(data, fields[n % len(fields)], n % 2), wire))
            varied.append((data[: max(20, len(data) - 30)], wire))  # cut by a snap length
        path = tmp / f"built-{linktype}.pcap"
        write_pcap(path, linktype, varied)
        out.append(path)
    return out


def tshark_status(capture: Path) -> list[dict[str, list[str]]]:
    assert TSHARK is not None
    fields = ["ip.checksum.status", "tcp.checksum.status", "udp.checksum.status"]
    cmd = [TSHARK, "-n", "-r", str(capture), *TSHARK_OPTS, "-T", "fields", "-E", "occurrence=a",
           "-E", "aggregator=,"] + [x for f in fields for x in ("-e", f)]  # fmt: skip
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=300, check=False)
    assert result.returncode == 0, result.stderr
    rows = []
    for line in result.stdout.splitlines():
        parts = (line.split("\t") + ["", "", ""])[:3]
        rows.append(
            {
                k: [v for v in p.split(",") if v]
                for k, p in zip(("IPV4", "TCP", "UDP"), parts, strict=True)
            }
        )
    return rows


def our_frames(capture: Path, tmp: Path) -> list[dict[str, object]]:
    """``pcap verify --frames`` records, in process (the CLI path is one sink away)."""
    from ndis_offload.capture.report import frame_records
    from ndis_offload.io.pcap_jobs import Options, verify

    del tmp
    records: list[dict[str, object]] = []

    def sink(chunk: Any, checks: Any, diag: Any) -> None:
        records.extend(frame_records(checks, diag, chunk.first_index))

    verify(capture, Options(keep_going=True, observe=sink))
    return records


def compare(capture: Path, tmp: Path, tally: Counter[str]) -> list[str]:
    """Frame verdicts that contradict tshark; per-layer agreement counted in ``tally``."""
    theirs, ours = tshark_status(capture), our_frames(capture, tmp)
    assert len(theirs) == len(ours)
    problems = []
    for t, o in zip(theirs, ours, strict=True):
        statuses = [s for v in t.values() for s in v]
        diagnosis = str(o["diagnosis"])
        layers = o["layers"]
        assert isinstance(layers, list)
        offload = diagnosis in OFFLOAD or any(x["state"] == "offload" for x in layers)
        tally["frames"] += 1
        if "0" in statuses and not (diagnosis in ERRORS or offload):
            problems.append(f"{capture.name} frame {o['frame']}: tshark bad, ours {diagnosis}")
        if "0" not in statuses and "1" in statuses and diagnosis in ERRORS:
            problems.append(f"{capture.name} frame {o['frame']}: tshark good, ours {diagnosis}")
        for kind, verdicts in t.items():
            mine = [x["state"] for x in layers if x["kind"] == kind]
            for theirs_v, mine_v in zip(verdicts, mine, strict=False):
                if theirs_v == "2" or mine_v in ("none", "cut"):
                    continue
                tally[f"{kind} compared"] += 1
                same = (theirs_v == "1") == (mine_v == "ok")
                tally[f"{kind} agree"] += same
    return problems


@pytest.mark.skipif(TSHARK is None, reason="tshark is not installed (apt-get install tshark)")
def test_verify_agrees_with_tshark(tmp_path: Path) -> None:
    """tshark with IP/TCP/UDP checksum validation: every frame it calls bad is an error or an
    offload pattern for us; none it calls good is an error; per-layer verdicts agree."""
    tally: Counter[str] = Counter()
    problems = []
    captures = sorted(VECTORS.glob("*.pcap*")) + built_captures(tmp_path)
    for capture in captures:
        problems += compare(capture, tmp_path, tally)
    print("tshark agreement:", dict(tally))
    assert problems == []
    for kind in ("IPV4", "TCP", "UDP"):
        assert tally[f"{kind} compared"] > 50
        assert tally[f"{kind} agree"] == tally[f"{kind} compared"], kind


def test_tcpdump_captures_are_diagnosed_as_issue_8_says(tmp_path: Path) -> None:
    """The real captures named in issue 8, vendored from tcpdump's tests (BSD licence)."""

    def diagnoses(name: str) -> Counter[str]:
        return Counter(str(r["diagnosis"]) for r in our_frames(VECTORS / name, tmp_path))

    babel = diagnoses("babel_update_oobr.pcap")
    assert babel["wrong checksum"] >= 80 and babel["cut by snap length"] == 0
    assert diagnoses("gso-ipv4-geneve-ipv4.pcap") == {"unsegmented LSO send": 1}
    assert diagnoses("bigtcp-ipv6-vxlan-ipv6.pcap") == {"unsegmented LSO send": 1}
    assert diagnoses("bigtcp-ipv4.pcap") == {"unsegmented LSO send": 1}
    assert diagnoses("bigtcp-ipv6-hbh.pcap") == {"unsegmented LSO send": 1}
    assert "unsegmented LSO send" not in diagnoses("icmp-length-zero.pcapng")
    assert set(diagnoses("geneve.pcap")) == {"correct"}


@pytest.mark.skipif(
    TCPREWRITE is None, reason="tcprewrite is not installed (apt-get install tcpreplay)"
)
def test_fix_all_equals_tcprewrite_fixcsum(tmp_path: Path) -> None:
    """``pcap fix --all`` == ``tcprewrite --fixcsum`` frame by frame, except where tcprewrite
    is wrong: it rewrites IPv6 destination MACs to 33:33:..., cannot checksum IPv6 packets
    with extension headers, and leaves UDP/IPv6 zero checksums (RFC 8200 §8.1 forbids them)."""
    from frame_recipes import varied_frames
    from ndis_offload.packet.locate import Layer, locate

    assert TCPREWRITE is not None
    frames = varied_frames(800)
    src, ours, theirs = tmp_path / "in.pcap", tmp_path / "ours.pcap", tmp_path / "theirs.pcap"
    write_pcap(src, 1, [(f, len(f)) for f in frames])
    done = subprocess.run(
        [sys.executable, "-c", "from ndis_offload.cli.main import main; raise SystemExit(main())",
         "pcap", "fix", "--all", "-q", str(src), str(ours)],
        capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    tool = subprocess.run([TCPREWRITE, "--fixcsum", "-i", str(src), "-o", str(theirs)],
                          capture_output=True, text=True, timeout=300, check=False)  # fmt: skip
    assert tool.returncode == 0, tool.stderr

    def records(path: Path) -> list[bytes]:
        data, pos, out = path.read_bytes(), 24, []
        while pos < len(data):
            caplen = struct.unpack_from("<I", data, pos + 8)[0]
            out.append(data[pos + 16 : pos + 16 + caplen])
            pos += 16 + caplen
        return out

    mine, tcprewrite = records(ours), records(theirs)
    assert len(mine) == len(tcprewrite) == len(frames)
    tally: Counter[str] = Counter()
    for a, b, original in zip(mine, tcprewrite, frames, strict=True):
        found = locate(original)
        ip = next(h for h in found.hops if h.kind in (Layer.IPV4, Layer.IPV6))
        if ip.kind == Layer.IPV6:
            if ip.hlen > 40:
                tally["IPv6 extension headers (tcprewrite cannot)"] += 1
                continue
            l4 = found.hops[-1]
            if l4.kind == Layer.UDP and b[l4.offset + 6 : l4.offset + 8] == b"\0\0":
                tally["UDP/IPv6 zero checksum (tcprewrite leaves it)"] += 1
                continue
            a, b = a[12:], b[12:]  # tcprewrite puts 33:33:... into the MAC addresses
        tally["compared"] += 1
        assert a == b, (tally["compared"], [h.kind.name for h in found.hops])
    print("tcprewrite comparison:", dict(tally))
    assert tally["compared"] >= 400


@pytest.mark.skipif(TSHARK is None, reason="tshark is not installed (apt-get install tshark)")
def test_fix_all_leaves_nothing_tshark_calls_bad(tmp_path: Path) -> None:
    """After ``pcap fix --all`` tshark finds no bad IPv4 / TCP / UDP checksum in any layer of
    the built captures (every tunnel, inner and outer; cut frames keep what cannot be fixed
    unverified)."""
    for capture in built_captures(tmp_path):
        fixed = tmp_path / ("fixed-" + capture.name)
        done = subprocess.run(
            [sys.executable, "-c",
             "from ndis_offload.cli.main import main; raise SystemExit(main())",
             "pcap", "fix", "--all", "-q", "--keep-going", str(capture), str(fixed)],
            capture_output=True, text=True, timeout=300, check=False,
        )  # fmt: skip
        assert done.returncode == 0, done.stdout + done.stderr
        rows = tshark_status(fixed)
        bad = [i + 1 for i, row in enumerate(rows) if any("0" in v for v in row.values())]
        assert bad == [], f"{capture.name}: tshark still finds bad checksums in frames {bad}"
