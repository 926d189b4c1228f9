"""``pcap coalesce --queues N``: a NIC with N receive queues, frames steered by the NDIS RSS
hash, one RSC coalescer per queue.

Oracles: the RSS hash values of the NDIS page "Verifying the RSS hash calculation" (the queue
each of its 4-tuples lands on); the per-frame scalar RSS path (``engine.rss.rss_hash``) and
independent per-queue ``RscCoalescer`` instances for the expected output, record by record;
tshark's checksum validation of every coalesced frame; the TCP payload of every flow, read
back by dpkt (coalesced, and coalesced then segmented again), equal to the input's.
Doc pages: "Indicating RSS Receive Data" (unhashed data to the default queue), "RSS with
hardware queuing" (each queue processed by its own DPC), "Indicating Coalesced Segments"
(an SCU indicated by the receive processing of its segments: a queue's SCUs are its own)."""

from __future__ import annotations

import io
import shutil
import struct
import subprocess
from collections import defaultdict
from pathlib import Path

import dpkt
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from rich.console import Console
from scapy.layers.inet import IP, TCP, UDP
from scapy.layers.inet6 import IPv6
from scapy.layers.l2 import ARP, Ether

from coalesce_frames import MAC, receive_frames, write_pcap, write_pcapng
from ndis_offload.cli.main import main
from ndis_offload.engine.rsc import RscCoalescer
from ndis_offload.engine.rss import VERIFICATION_KEY, rss_hash
from ndis_offload.errors import PacketError
from ndis_offload.io.capture import CaptureReader
from ndis_offload.io.coalesce import DEFAULT_QUEUE, Steering, coalesce
from ndis_offload.packet.headers import parse_frame
from rss_vectors import IPV4_TABLE, IPV6_TABLE

TSHARK = shutil.which("tshark")
Records = list[tuple[int, bytes]]


def read_pcap(path: Path) -> Records:
    """(timestamp in microseconds, frame) of every record of a little-endian pcap file."""
    data = path.read_bytes()
    out, pos = [], 24
    while pos < len(data):
        sec, usec, caplen, _ = struct.unpack_from("<IIII", data, pos)
        out.append((sec * 1_000_000 + usec, data[pos + 16 : pos + 16 + caplen]))
        pos += 16 + caplen
    return out


def reference_queue(frame: bytes, queues: int, table_size: int) -> int:
    """The queue by the scalar per-frame path: not IP goes to the default queue, else the
    round-robin indirection table at the hash's low bits."""
    try:
        parse_frame(frame)
    except PacketError:  # not IP, or malformed: no hash
        return DEFAULT_QUEUE
    return (rss_hash(VERIFICATION_KEY, frame) & (table_size - 1)) % queues


def reference(frames: Records, queues: int, table_size: int, timeout: float) -> Records:
    """What N queues indicate, written as the module documents: each indication when the
    frame that caused it arrives, stamped with its queue's last frame; the end flushes queue
    0 first."""
    rsc = {q: RscCoalescer(timeout=timeout) for q in range(queues)}
    last: dict[int, int] = {}
    out: Records = []
    for ts, frame in frames:
        q = reference_queue(frame, queues, table_size)
        indicated = rsc[q].push(frame, ts / 1_000_000)
        last[q] = ts
        out += [(ts, c.frame) for c in indicated]
    for q in range(queues):
        if q in last:
            out += [(last[q], c.frame) for c in rsc[q].flush()]
    return out


@pytest.fixture(scope="module")
def capture(tmp_path_factory: pytest.TempPathFactory) -> Path:
    frames = receive_frames(flows=160, rounds=4)
    return write_pcap(tmp_path_factory.mktemp("rx") / "rx.pcap", [(f, t) for f, t in frames])


@pytest.mark.parametrize("queues", [1, 2, 4, 8])
@pytest.mark.parametrize("timeout", [0.0005, 1000.0])
def test_output_is_each_queue_coalescing_alone(
    tmp_path: Path, capture: Path, queues: int, timeout: float
) -> None:
    out = tmp_path / "out.pcap"
    result = coalesce(capture, out, timeout=timeout, steering=Steering(queues, 64))
    got = read_pcap(out)
    assert got == reference(read_pcap(capture), queues, 64, timeout)
    assert result.frames_out == len(got)
    assert result.changed == result.frames_in - len(got) > 0


def test_each_queue_has_its_own_scu_limit(tmp_path: Path, capture: Path) -> None:
    """160 flows held at once: one coalescer (64 SCUs) evicts all the time; 4 queues of
    about 40 flows each hold every flow, so they merge more (and 8 queues no more)."""
    written = {}
    for queues in (1, 2, 4, 8):
        written[queues] = coalesce(capture, tmp_path / f"{queues}.pcap", timeout=1000.0,
                                   steering=Steering(queues)).frames_out  # fmt: skip
    assert written[1] > written[2] > written[4] == written[8]


def test_one_queue_is_the_single_coalescer(tmp_path: Path, capture: Path) -> None:
    """``--queues 1`` (the default) steers nothing and is the coalescer of a NIC without
    RSS: the same bytes whatever the table or key."""
    coalesce(capture, tmp_path / "a.pcap")
    coalesce(capture, tmp_path / "b.pcap", steering=Steering(1, 2, bytes(40)))
    assert (tmp_path / "a.pcap").read_bytes() == (tmp_path / "b.pcap").read_bytes()
    assert read_pcap(tmp_path / "a.pcap") == reference(read_pcap(capture), 1, 128, 0.0005)


def steer(frames: list[bytes], steering: Steering) -> list[int]:
    data = bytearray(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1))
    for f in frames:
        data += struct.pack("<IIII", 1, 0, len(f), len(f)) + f
    chunks = list(CaptureReader(io.BytesIO(bytes(data))).chunks())
    return [q for chunk in chunks for q in steering.queues_of(chunk).tolist()]


def test_queues_follow_the_ndis_verification_table() -> None:
    """ "Verifying the RSS hash calculation": each row's TCP 4-tuple hash (the page lists the
    destination first; the frame's source is the row's source) picks the queue through the
    indirection table's low bits; a UDP frame between the same addresses uses the address-
    only hash (NDIS_HASH_IPV4 / IPV6, TCP being the only transport hashed); ARP goes to the
    default queue ("Indicating RSS Receive Data")."""
    frames, want = [], []
    size, queues = 128, 5
    for dst, dport, src, sport, ip_hash, tcp_hash in IPV4_TABLE + IPV6_TABLE:
        ip = IPv6(src=src, dst=dst) if ":" in src else IP(src=src, dst=dst)
        frames.append(bytes(Ether(**MAC) / ip / TCP(sport=sport, dport=dport) / b"x"))
        want.append((tcp_hash & (size - 1)) % queues)
        frames.append(bytes(Ether(**MAC) / ip / UDP(sport=sport, dport=dport)))
        want.append((ip_hash & (size - 1)) % queues)
    frames.append(bytes(Ether(**MAC) / ARP()))
    want.append(DEFAULT_QUEUE)
    assert steer(frames, Steering(queues, size)) == want
    assert len(set(want)) > 2  # the rows do spread


@settings(max_examples=25)
@given(st.integers(1, 9), st.sampled_from([1, 2, 8, 128]), st.integers(0, 1000))
def test_steering_equals_the_scalar_path(queues: int, size: int, seed: int) -> None:
    frames = [f for f, _ in receive_frames(flows=24, rounds=1, seed=seed)]
    assert steer(frames, Steering(queues, size)) == [
        reference_queue(f, queues, size) for f in frames
    ]


def streams(path: Path) -> dict[tuple[bytes, bytes, int, int], bytes]:
    """Each TCP flow's payload in sequence order (dpkt, an independent parser)."""
    pieces: dict[tuple[bytes, bytes, int, int], dict[int, bytes]] = defaultdict(dict)
    with path.open("rb") as handle:
        for _, buf in dpkt.pcap.Reader(handle):
            ip = dpkt.ethernet.Ethernet(buf).data
            if isinstance(ip, dpkt.ip.IP | dpkt.ip6.IP6) and isinstance(ip.data, dpkt.tcp.TCP):
                if ip.data.data:
                    pieces[(bytes(ip.src), bytes(ip.dst), ip.data.sport, ip.data.dport)][
                        ip.data.seq
                    ] = bytes(ip.data.data)
    out = {}
    for key, parts in pieces.items():
        data, nxt = b"", min(parts)
        for seq in sorted(parts):
            assert seq == nxt, "a gap or an overlap in the stream"
            data += parts[seq]
            nxt = seq + len(parts[seq])
        out[key] = data
    return out


def cli(*argv: str) -> tuple[int, str]:
    out = io.StringIO()
    return main(list(argv), console=Console(file=out, width=200)), out.getvalue()


@pytest.mark.parametrize("queues", [1, 4])
def test_payload_survives_coalescing_and_segmenting_back(
    tmp_path: Path, capture: Path, queues: int
) -> None:
    merged, cut = tmp_path / "merged.pcap", tmp_path / "cut.pcap"
    code, text = cli("pcap", "coalesce", "-q", "--timeout", "1000", "--queues", str(queues),
                     str(capture), str(merged))  # fmt: skip
    assert code == 0, text
    assert len(read_pcap(merged)) < len(read_pcap(capture))
    assert streams(merged) == streams(capture)
    code, text = cli("pcap", "segment", "-q", "--mss", "1448", str(merged), str(cut))
    assert code == 0, text
    assert streams(cut) == streams(capture)
    assert max(len(f) for _, f in read_pcap(cut)) <= 14 + 40 + 32 + 1448


def tshark_checksums(path: Path) -> list[list[str]]:
    """tshark's IPv4 / TCP checksum status per frame (0 bad, 1 good, 2 unverified)."""
    assert TSHARK is not None
    cmd = [TSHARK, "-n", "-r", str(path), "-o", "ip.check_checksum:TRUE", "-o",
           "tcp.check_checksum:TRUE", "-T", "fields", "-e", "ip.checksum.status", "-e",
           "tcp.checksum.status"]  # fmt: skip
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 0, result.stderr
    return [line.split("\t") for line in result.stdout.splitlines()]


@pytest.mark.skipif(TSHARK is None, reason="tshark is not installed")
@pytest.mark.parametrize("queues", [1, 4])
def test_tshark_validates_every_coalesced_checksum(
    tmp_path: Path, capture: Path, queues: int
) -> None:
    out = tmp_path / "out.pcap"
    coalesce(capture, out, timeout=1000.0, steering=Steering(queues))
    rows = tshark_checksums(out)
    assert len(rows) == len(read_pcap(out))
    assert not [r for r in rows if "0" in r], "tshark finds bad checksums"
    assert sum(r[1] == "1" for r in rows) > len(rows) // 2  # TCP checksums were checked


def test_pcapng_blocks_flush_every_queue(tmp_path: Path) -> None:
    """A block between frames is written where it was, after every queue's SCUs (the
    serial run's rule); the frames around it are those of the pcap run."""
    frames = receive_frames(flows=40, rounds=3)
    ng = write_pcapng(tmp_path / "in.pcapng", frames, comment_every=50)
    coalesce(ng, tmp_path / "out.pcapng", timeout=1000.0, steering=Steering(4))
    data = (tmp_path / "out.pcapng").read_bytes()
    pos, blocks, packets = 0, 0, 0
    while pos < len(data):
        btype, blen = struct.unpack_from("<II", data, pos)
        blocks += btype == 0x00000BAD
        packets += btype == 6
        pos += blen
    assert blocks == len(frames) // 50
    flat = write_pcap(tmp_path / "flat.pcap", frames)
    unflushed = coalesce(flat, tmp_path / "flat-out.pcap", timeout=1000.0, steering=Steering(4))
    assert packets > unflushed.frames_out  # the blocks cut SCUs short


def test_cli_options(tmp_path: Path, capture: Path) -> None:
    out = tmp_path / "o.pcap"
    code, text = cli("pcap", "coalesce", str(capture), str(out), "--queues", "2",
                     "--table-size", "100")  # fmt: skip
    assert code == 2 and "power of 2" in text and not out.exists()
    code, text = cli("pcap", "coalesce", str(capture), str(out), "--queues", "0")
    assert code == 2 and not out.exists()
    code, text = cli("pcap", "coalesce", str(capture), str(out), "--key", "zz")
    assert code == 2 and "not hex" in text
    code, text = cli("pcap", "coalesce", "-q", str(capture), str(out), "--queues", "3",
                     "--key", VERIFICATION_KEY.hex(), "--table-size", "8")  # fmt: skip
    assert code == 0, text
    assert read_pcap(out) == reference(read_pcap(capture), 3, 8, 0.0005)
