"""A bounded TCP sender and receiver that check a SHA-256 of the stream (run each inside a
namespace with ``ip netns exec``): ``python -m ndis_offload.io.tap.traffic recv PORT`` prints
``{"bytes": N, "sha256": ...}`` after one connection ends; ``... send HOST PORT BYTES``
sends ``BYTES`` of seeded pseudo-random data and prints the same for what it sent.
``usend`` / ``urecv`` do the same for UDP GSO sends (``UDP_SEGMENT``), datagram by datagram."""

from __future__ import annotations

import hashlib
import json
import socket
import sys
import time

import numpy as np

BLOCK = 1 << 20


def blocks(total: int, seed: int = 1) -> list[bytes]:
    """Sixteen distinct 1 MiB blocks; block ``i`` of the stream is ``pool[i % 16]`` with its
    first 8 bytes replaced by ``i`` (so no two blocks are equal)."""
    rng = np.random.default_rng(seed)
    return [rng.bytes(BLOCK) for _ in range(16)]


def send(host: str, port: int, total: int, *, pace: float = 0.0) -> dict[str, object]:
    pool = blocks(total)
    digest = hashlib.sha256()
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    deadline = time.monotonic() + 10
    while True:
        sock = socket.socket(family, socket.SOCK_STREAM)
        try:
            sock.connect((host, port))
            break
        except OSError:
            sock.close()
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)
    start = time.monotonic()
    with sock:
        sent, index = 0, 0
        while sent < total:
            block = bytearray(pool[index % 16])
            block[:8] = index.to_bytes(8, "little")
            chunk = bytes(block[: min(BLOCK, total - sent)])
            sock.sendall(chunk)
            digest.update(chunk)
            sent += len(chunk)
            index += 1
            if pace:
                time.sleep(pace)
        sock.shutdown(socket.SHUT_WR)
        sock.recv(1)
    elapsed = time.monotonic() - start
    return {"bytes": sent, "sha256": digest.hexdigest(), "seconds": round(elapsed, 3)}


def receive(port: int, *, family: int = socket.AF_INET) -> dict[str, object]:
    digest = hashlib.sha256()
    with socket.socket(family, socket.SOCK_STREAM) as server:
        server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        server.bind(("::" if family == socket.AF_INET6 else "0.0.0.0", port))
        server.listen(1)
        print(json.dumps({"listening": port}), flush=True)
        conn, _ = server.accept()
        total = 0
        buffer = bytearray(BLOCK)
        view = memoryview(buffer)
        with conn:
            while True:
                n = conn.recv_into(buffer)
                if n == 0:
                    break
                digest.update(view[:n])
                total += n
    return {"bytes": total, "sha256": digest.hexdigest()}


UDP_SEGMENT = 103
"""``setsockopt(SOL_UDP, UDP_SEGMENT, gso_size)``: the kernel sends one GSO datagram."""


def udp_payload(index: int, size: int) -> bytes:
    """Datagram ``index``: its number then a pattern derived from it."""
    return index.to_bytes(4, "big") + bytes((index + i) & 0xFF for i in range(size - 4))


def udp_send(host: str, port: int, sends: int, segments: int, size: int) -> dict[str, object]:
    """``sends`` writes of ``segments`` datagrams of ``size`` bytes each, every write one
    UDP GSO send (``UDP_SEGMENT``): the kernel hands the TAP one ``GSO_UDP_L4`` frame."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    digest = hashlib.sha256()
    with socket.socket(family, socket.SOCK_DGRAM) as sock:
        sock.setsockopt(socket.IPPROTO_UDP, UDP_SEGMENT, size)
        sock.connect((host, port))
        index = 0
        for _ in range(sends):
            chunk = b"".join(udp_payload(index + k, size) for k in range(segments))
            for k in range(segments):
                digest.update(chunk[k * size : (k + 1) * size])
            index += segments
            sock.send(chunk)
            time.sleep(0.002)
    return {"datagrams": index, "sha256": digest.hexdigest()}


def udp_receive(port: int, count: int, timeout: float = 10.0) -> dict[str, object]:
    """Receive ``count`` datagrams (in order of their numbers) or until ``timeout``."""
    got: dict[int, bytes] = {}
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8 << 20)
        sock.bind(("0.0.0.0", port))
        print(json.dumps({"listening": port}), flush=True)
        sock.settimeout(timeout)
        try:
            while len(got) < count:
                data = sock.recv(65536)
                got[int.from_bytes(data[:4], "big")] = data
        except TimeoutError:
            pass
    digest = hashlib.sha256()
    for index in sorted(got):
        digest.update(got[index])
    sizes = sorted({len(d) for d in got.values()})
    return {"datagrams": len(got), "sha256": digest.hexdigest(), "sizes": sizes}


def main(argv: list[str]) -> int:
    if len(argv) >= 2 and argv[0] == "recv":
        family = socket.AF_INET6 if len(argv) > 2 and argv[2] == "6" else socket.AF_INET
        print(json.dumps(receive(int(argv[1]), family=family)), flush=True)
        return 0
    if len(argv) >= 4 and argv[0] == "send":
        pace = float(argv[4]) if len(argv) > 4 else 0.0
        print(json.dumps(send(argv[1], int(argv[2]), int(argv[3]), pace=pace)), flush=True)
        return 0
    if len(argv) == 3 and argv[0] == "urecv":
        print(json.dumps(udp_receive(int(argv[1]), int(argv[2]))), flush=True)
        return 0
    if len(argv) == 6 and argv[0] == "usend":
        host, port, sends, segments, size = argv[1], *map(int, argv[2:])
        print(json.dumps(udp_send(host, port, sends, segments, size)), flush=True)
        return 0
    print(
        "usage: traffic recv PORT [6] | send HOST PORT BYTES [PACE] | urecv PORT COUNT"
        " | usend HOST PORT SENDS SEGMENTS SIZE",
        file=sys.stderr,
    )
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
