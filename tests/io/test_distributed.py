"""``pcap verify`` / ``fix`` on a Dask cluster give exactly what one pass gives: the same
report and byte-identical output, on pcap and pcapng, when a piece boundary is a false sync,
when a worker is killed mid-run, and when the run is interrupted (no output, no temp file)."""

from __future__ import annotations

import io
import json
import os
import signal
import struct
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console
from scapy.layers.inet import IP, TCP, UDP
from scapy.layers.inet6 import IPv6
from scapy.layers.l2 import Dot1Q, Ether

from ndis_offload.cli.main import main
from ndis_offload.cli.pcap import summary
from ndis_offload.errors import PacketError
from ndis_offload.io import distributed, pcap_jobs
from ndis_offload.io.cluster import ClusterSpec
from ndis_offload.io.pcap_jobs import Options
from ndis_offload.packet.checksum import pseudo_header_sum_ipv4

distributed_mod = pytest.importorskip("distributed", reason="the dask extra is not installed")

MAC: dict[str, Any] = {"src": "02:00:00:00:00:01", "dst": "02:00:00:00:00:02"}
PIECE = 256 << 10  # small pieces: many of them in a few-MB capture


@pytest.fixture(scope="module")
def cluster() -> Iterator[Any]:
    from distributed import LocalCluster

    with LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None,
        silence_logs=50,
    ) as local:  # fmt: skip
        yield local


@pytest.fixture
def spec(cluster: Any) -> ClusterSpec:
    return ClusterSpec(scheduler=cluster.scheduler_address)


def block(seed: int) -> list[bytes]:
    """Varied frames: SYNs announcing an MSS (so later pieces depend on earlier ones),
    frames above that MSS, checksums left for offload, IPv6, UDP, a VLAN tag."""
    frames: list[bytes] = []
    for flow in range(4):
        sport = 40000 + flow + seed * 16
        syn = (
            Ether(**MAC)
            / IP(src="10.0.0.2", dst="10.0.0.1")
            / TCP(sport=443, dport=sport, flags="SA", options=[("MSS", 1000 + flow * 100)])
        )
        frames.append(bytes(syn))
        for i in range(30):
            size = 200 + (i * 97 + flow * 31) % 1800
            pkt = Ether(**MAC) / IP(src="10.0.0.1", dst="10.0.0.2", id=i) / TCP(
                sport=sport, dport=443, flags="PA", seq=i * 3000
            ) / bytes(size)  # fmt: skip
            raw = bytearray(bytes(pkt))
            if i % 3 == 0:  # left for offload: IP checksum 0, TCP = pseudo-header sum
                raw[24:26] = b"\0\0"
                pseudo = pseudo_header_sum_ipv4(bytes([10, 0, 0, 1]), bytes([10, 0, 0, 2]), 6,
                                                20 + size)  # fmt: skip
                struct.pack_into("!H", raw, 50, pseudo)
            frames.append(bytes(raw))
    frames.append(bytes(Ether(**MAC) / IPv6(src="2001:db8::1", dst="2001:db8::2")
                        / UDP(sport=1, dport=2) / bytes(300)))  # fmt: skip
    frames.append(bytes(Ether(**MAC) / Dot1Q(vlan=7) / IP(src="10.1.0.1", dst="10.1.0.2")
                        / UDP(sport=3, dport=4) / bytes(120)))  # fmt: skip
    return frames


def write(path: Path, fmt: str, repeats: int = 40) -> None:
    frames = [f for r in range(repeats) for f in block(r % 5)]
    if fmt == "pcap":
        out = bytearray(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1))
        for i, f in enumerate(frames):
            out += struct.pack("<IIII", 1_700_000_000 + i // 100, i % 1_000_000, len(f), len(f))
            out += f
    else:

        def blk(btype: int, body: bytes) -> bytes:
            body += bytes(-len(body) % 4)
            return (
                struct.pack("<II", btype, len(body) + 12) + body + struct.pack("<I", len(body) + 12)
            )

        out = bytearray(blk(0x0A0D0D0A, struct.pack("<IHHq", 0x1A2B3C4D, 1, 0, -1)))
        out += blk(1, struct.pack("<HHI", 1, 0, 65535))
        for i, f in enumerate(frames):
            out += blk(6, struct.pack("<IIIII", 0, i // 7, i, len(f), len(f)) + f)
    path.write_bytes(bytes(out))


def report(result: pcap_jobs.JobResult) -> str:
    return json.dumps(summary(result), sort_keys=True)


@pytest.mark.parametrize("fmt", ["pcap", "pcapng"])
def test_verify_equals_serial(tmp_path: Path, spec: ClusterSpec, fmt: str) -> None:
    path = tmp_path / f"in.{fmt}"
    write(path, fmt)
    serial = pcap_jobs.verify(path)
    assert serial.analyzer.frames > 4000 and serial.analyzer.peer_mss
    parted = distributed.verify(path, spec, piece_bytes=PIECE)
    assert report(parted) == report(serial)
    assert parted.total_bytes == path.stat().st_size


@pytest.mark.parametrize("fmt", ["pcap", "pcapng"])
@pytest.mark.parametrize("everything", [False, True])
def test_fix_is_byte_identical(
    tmp_path: Path, spec: ClusterSpec, fmt: str, everything: bool
) -> None:
    path = tmp_path / f"in.{fmt}"
    write(path, fmt)
    serial = pcap_jobs.fix(path, tmp_path / "serial", everything=everything)
    parted = distributed.fix(path, tmp_path / "parted", spec, everything=everything,
                             piece_bytes=PIECE)  # fmt: skip
    assert (tmp_path / "parted").read_bytes() == (tmp_path / "serial").read_bytes()
    assert (parted.changed, parted.frames_out) == (serial.changed, serial.frames_out)
    assert report(parted) == report(serial)
    assert not [p for p in os.listdir(tmp_path) if p.endswith(".tmp")]


def test_fix_stops_at_the_first_malformed_frame_like_serial(
    tmp_path: Path, spec: ClusterSpec
) -> None:
    frames = [bytes(Ether(**MAC) / IP(src="1.1.1.1", dst="2.2.2.2") / UDP() / bytes(500))] * 4000
    bad = bytearray(frames[2500])
    bad[14] = 0x4F  # IHL 15: the IPv4 header claims 60 bytes of a 28-byte header + payload
    bad[16:18] = (30).to_bytes(2, "big")  # and a total length shorter than that header
    frames[2500] = bytes(bad)
    out = bytearray(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1))
    for i, f in enumerate(frames):
        out += struct.pack("<IIII", 1_700_000_000, i, len(f), len(f)) + f
    path = tmp_path / "in.pcap"
    path.write_bytes(bytes(out))
    with pytest.raises(PacketError) as serial:
        pcap_jobs.fix(path, tmp_path / "serial")
    with pytest.raises(PacketError) as parted:
        distributed.fix(path, tmp_path / "parted", spec, piece_bytes=PIECE)
    assert serial.value.frame_index == parted.value.frame_index == 2500
    assert (serial.value.offset, serial.value.reason) == (parted.value.offset, parted.value.reason)
    assert sorted(os.listdir(tmp_path)) == ["in.pcap"]


def test_false_sync_falls_back_to_one_pass(tmp_path: Path, spec: ClusterSpec) -> None:
    """Payloads full of lookalike record headers: whatever the sync picks, the answer is the
    serial one (a false boundary is detected and the run goes serial)."""
    fake = struct.pack("<IIII", 1_700_000_000, 5, 40, 40) + bytes(40)
    frames = [bytes(Ether(**MAC) / IP(src="1.1.1.1", dst="2.2.2.2") / UDP() / (fake * 20))] * 3000
    out = bytearray(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1))
    for i, f in enumerate(frames):
        out += struct.pack("<IIII", 1_700_000_000, i, len(f), len(f)) + f
    path = tmp_path / "fake.pcap"
    path.write_bytes(bytes(out))
    assert report(distributed.verify(path, spec, piece_bytes=PIECE)) == report(
        pcap_jobs.verify(path)
    )
    distributed.fix(path, tmp_path / "out", spec, everything=True, piece_bytes=PIECE)
    pcap_jobs.fix(path, tmp_path / "ref", everything=True)
    assert (tmp_path / "out").read_bytes() == (tmp_path / "ref").read_bytes()


def test_killed_worker_is_retried(tmp_path: Path, spec: ClusterSpec, cluster: Any) -> None:
    from distributed import Client

    path = tmp_path / "in.pcap"
    write(path, "pcap", repeats=120)
    serial = pcap_jobs.fix(path, tmp_path / "serial", everything=True)
    with Client(cluster.scheduler_address) as client:
        pids = list(client.run(os.getpid).values())
    killed = threading.Event()

    def progress(frames: int, nbytes: int) -> None:
        if not killed.is_set():
            killed.set()
            os.kill(pids[0], signal.SIGKILL)

    result = distributed.fix(path, tmp_path / "parted", spec, Options(progress=progress),
                             everything=True, piece_bytes=PIECE)  # fmt: skip
    assert killed.is_set()
    assert (tmp_path / "parted").read_bytes() == (tmp_path / "serial").read_bytes()
    assert result.changed == serial.changed


def test_interrupt_leaves_nothing(tmp_path: Path, spec: ClusterSpec) -> None:
    path = tmp_path / "in.pcap"
    write(path, "pcap")
    (tmp_path / "out").write_bytes(b"keep me")

    def progress(frames: int, nbytes: int) -> None:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        distributed.fix(path, tmp_path / "out", spec, Options(progress=progress),
                        piece_bytes=PIECE)  # fmt: skip
    assert (tmp_path / "out").read_bytes() == b"keep me"
    assert sorted(os.listdir(tmp_path)) == ["in.pcap", "out"]


def cli(*argv: str) -> tuple[int, str]:
    out = io.StringIO()
    code = main(list(argv), console=Console(file=out, width=200))
    return code, out.getvalue()


def test_cli_workers_starts_a_local_cluster(tmp_path: Path) -> None:
    path = tmp_path / "in.pcap"
    write(path, "pcap", repeats=10)
    code, text = cli("pcap", "verify", str(path), "--json", "--workers", "2")
    ref_code, ref = cli("pcap", "verify", str(path), "--json")
    assert (code, json.loads(text)) == (ref_code, json.loads(ref))


def test_cli_scale_out_errors(tmp_path: Path, spec: ClusterSpec, monkeypatch: Any) -> None:
    path = tmp_path / "in.pcap"
    write(path, "pcap", repeats=1)
    code, text = cli("pcap", "segment", str(path), str(tmp_path / "o"), "--workers", "2")
    assert code == 2 and "does not run on a cluster" in text
    assert cli("pcap", "verify", str(path), "--workers", "-1")[0] == 2
    from ndis_offload.cli import pcap as cli_pcap

    monkeypatch.setattr(cli_pcap, "dask_available", lambda: False)
    code, text = cli("pcap", "verify", str(path), "--workers", "2")
    assert code == 2 and "ndis-offload[dask]" in text
