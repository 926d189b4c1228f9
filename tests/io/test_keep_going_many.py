"""``--keep-going`` over many input files (a directory or a glob): a bad file is reported by
name and frame number (within the file) and left out whole; the other files are processed
as the job without it would process them (the oracle: the same job over a directory that
holds only the good files, and each good file's single-file output); the exit code is 1."""

from __future__ import annotations

import functools
import io
import json
import shutil
import struct
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console
from scapy.layers.inet import IP, TCP, UDP
from scapy.layers.l2 import Ether

from ndis_offload.cli.main import main
from ndis_offload.io import pcap_jobs

MAC: dict[str, Any] = {"src": "02:00:00:00:00:01", "dst": "02:00:00:00:00:02"}
HEADER = struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1)


def frames(seed: int, count: int = 400) -> list[bytes]:
    return list(_frames(seed, count))


@functools.lru_cache(maxsize=8)
def _frames(seed: int, count: int) -> tuple[bytes, ...]:
    """TCP sends above the MSS a SYN announces (segment cuts them), UDP, a checksum left
    for offload (fix completes it)."""
    syn = TCP(sport=443, dport=4000 + seed, flags="SA", options=[("MSS", 1000)])
    out = [bytes(Ether(**MAC) / IP(src="10.0.0.2", dst="10.0.0.1") / syn)]
    for i in range(count):
        pkt = Ether(**MAC) / IP(src="10.0.0.1", dst="10.0.0.2") / (
            TCP(sport=4000 + seed, dport=443, flags="PA", seq=i * 3000) / bytes(2500)
            if i % 2 else UDP(sport=seed, dport=9) / bytes(100 + i)
        )  # fmt: skip
        raw = bytearray(bytes(pkt))
        if i % 7 == 0:
            raw[24:26] = b"\0\0"  # IPv4 header checksum left for offload
        out.append(bytes(raw))
    return tuple(out)


def pcap(path: Path, records: list[bytes]) -> Path:
    data = bytearray(HEADER)
    for i, f in enumerate(records):
        data += struct.pack("<IIII", 1_700_000_000 + i // 100, i % 100, len(f), len(f)) + f
    path.write_bytes(bytes(data))
    return path


def malformed(records: list[bytes], at: int) -> list[bytes]:
    bad = bytearray(records[at])
    bad[14] = 0x4F  # IHL 15: a 60-byte IPv4 header ...
    bad[16:18] = (30).to_bytes(2, "big")  # ... in a 30-byte datagram
    return records[:at] + [bytes(bad)] + records[at + 1 :]


def cli(*argv: str) -> tuple[int, str]:
    out = io.StringIO()
    return main(list(argv), console=Console(file=out, width=300)), out.getvalue()


@pytest.fixture
def inputs(tmp_path: Path) -> tuple[Path, Path]:
    """``in/``: 00 good, 01 with a malformed frame (its frame 251), 02 good, 03 not a
    capture; ``good/``: 00 and 02 alone."""
    (tmp_path / "in").mkdir()
    (tmp_path / "good").mkdir()
    pcap(tmp_path / "in" / "00.pcap", frames(1))
    pcap(tmp_path / "in" / "01.pcap", malformed(frames(2), 250))
    pcap(tmp_path / "in" / "02.pcap", frames(3))
    (tmp_path / "in" / "03.pcap").write_bytes(b"this is not a capture file at all" * 4)
    for name in ("00.pcap", "02.pcap"):
        shutil.copy(tmp_path / "in" / name, tmp_path / "good" / name)
    return tmp_path / "in", tmp_path / "good"


@pytest.mark.parametrize("tool", ["fix", "segment"])
def test_writers_leave_the_bad_files_out(tmp_path: Path, inputs: tuple[Path, Path],
                                         tool: str) -> None:  # fmt: skip
    many, _ = inputs
    code, text = cli("pcap", tool, "-q", "--keep-going", str(many), str(tmp_path / "out"))
    assert code == 1, text
    assert f"{many / '01.pcap'}: frame 251 at offset" in text
    assert f"{many / '03.pcap'}: " in text and "not a pcap or pcapng file" in text
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["00.pcap", "02.pcap"]
    job = pcap_jobs.fix if tool == "fix" else pcap_jobs.segment
    for name in ("00.pcap", "02.pcap"):
        job(many / name, tmp_path / "alone.pcap")
        assert (tmp_path / "out" / name).read_bytes() == (tmp_path / "alone.pcap").read_bytes()
    without = cli("pcap", tool, "-q", str(many), str(tmp_path / "strict"))
    assert without[0] == 2 and "01.pcap: frame 251" in without[1]
    assert not (tmp_path / "strict").exists() or not list((tmp_path / "strict").iterdir())


def test_verify_reports_as_if_the_bad_files_were_absent(
    tmp_path: Path, inputs: tuple[Path, Path]
) -> None:
    """A damaged record (a record header claiming 60 KB past the end) makes 01 a bad file
    for verify too; the report over the rest is the report of the good files alone, frames
    numbered across the files that count, the bad ones listed with 0 frames."""
    many, good = inputs
    data = bytearray((many / "01.pcap").read_bytes())
    struct.pack_into("<II", data, 24 + 16 + len(frames(2)[0]) + 8, 60000, 60000)
    (many / "01.pcap").write_bytes(bytes(data))
    code, text = cli("pcap", "verify", "--json", "--keep-going", str(many))
    ref_code, ref = cli("pcap", "verify", "--json", str(good))
    assert code == 1
    got, want = json.loads(text), json.loads(ref)
    files = got.pop("files")
    assert [(Path(f["path"]).name, f["frames"]) for f in files] == [
        ("00.pcap", 401), ("01.pcap", 0), ("02.pcap", 401), ("03.pcap", 0),
    ]  # fmt: skip
    errors = got.pop("capture_errors")
    assert len(errors) == 2 and errors[0].startswith(f"{many / '01.pcap'}: ")
    assert errors[1].startswith(f"{many / '03.pcap'}: file")
    assert got.pop("capture_error_count") == 2
    for key in ("files", "capture_errors", "capture_error_count", "bytes"):
        want.pop(key, None)
    got.pop("bytes")
    assert got == want


def test_frames_lines_leave_the_bad_file_out(tmp_path: Path, inputs: tuple[Path, Path]) -> None:
    """verify passes malformed frames on (01 counts); 03 is not a capture: left out."""
    many, good = inputs
    shutil.copy(many / "01.pcap", good / "01.pcap")
    code, _ = cli("pcap", "verify", "-q", "--keep-going", str(many), "--frames",
                  str(tmp_path / "many.jsonl"))  # fmt: skip
    assert code == 1
    cli("pcap", "verify", "-q", str(good), "--frames", str(tmp_path / "good.jsonl"))
    assert (tmp_path / "many.jsonl").read_bytes() == (tmp_path / "good.jsonl").read_bytes()
