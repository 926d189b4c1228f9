"""Receive-side scaling: the NDIS Toeplitz hash (``NdisHashFunctionToeplitz``), the hash-type
selection a NIC makes per packet, and the indirection-table lookup — scalar and batched.

The hash follows "RSS hashing functions" (learn.microsoft.com/windows-hardware/drivers/network/
rss-hashing-functions): for each input bit from the left, XOR the left-most 32 bits of the key
into the result when the bit is 1, then shift the key left one bit. The input is the source
address, destination address, source port, destination port, in that order ("Verifying the RSS
hash calculation" lists the destination first in its tables; the input order is still source
first). Hash-type selection follows "RSS hashing types".

Batching: the hash of an ``n``-byte input is the XOR of ``n`` per-byte contributions, each
depending only on the byte's position and value, so one ``(n, 256)`` table per key turns a batch
of inputs into one gather and one XOR-reduce.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

import numpy as np
import numpy.typing as npt

from ndis_offload.constants.rss import (
    NDIS_RSS_HASH_SECRET_KEY_MAX_SIZE_REVISION_1,
    NdisHashType,
)
from ndis_offload.packet.headers import parse_frame
from ndis_offload.packet.proto import IPPROTO_TCP, IPPROTO_UDP

VERIFICATION_KEY = bytes.fromhex(
    "6d5a56da255b0ec24167253d43a38fb0d0ca2bcbae7b30b477cb2da38030f20c6a42b73bbeac01fa"
)
"""The secret key of "Verifying the RSS hash calculation" (also Windows' default key)."""

SYMMETRIC_KEY = bytes.fromhex("6d5a" * 20)
"""A 40-byte key whose Toeplitz hash is the same for both directions of a flow (the key
repeats with a 16-bit period, so swapping source and destination, which swaps 16-bit-aligned
fields, leaves the hash unchanged). Used to keep both directions of a flow together."""

IPV4_HASH_TYPES = NdisHashType.IPV4 | NdisHashType.TCP_IPV4 | NdisHashType.UDP_IPV4
IPV6_HASH_TYPES = NdisHashType.IPV6 | NdisHashType.TCP_IPV6 | NdisHashType.UDP_IPV6
IPV6_EX_HASH_TYPES = NdisHashType.IPV6_EX | NdisHashType.TCP_IPV6_EX | NdisHashType.UDP_IPV6_EX
ALL_HASH_TYPES = IPV4_HASH_TYPES | IPV6_HASH_TYPES | IPV6_EX_HASH_TYPES

U8 = npt.NDArray[np.uint8]
U32 = npt.NDArray[np.uint32]


class RssError(ValueError):
    """A key, hash type or indirection table RSS cannot use."""


def _key_windows(key: bytes) -> npt.NDArray[np.uint64]:
    """The 32-bit key window starting at every bit position that a full window fits."""
    bits = np.unpackbits(np.frombuffer(key, dtype=np.uint8)).astype(np.uint64)
    count = bits.size - 31
    windows = np.zeros(count, dtype=np.uint64)
    for shift in range(32):
        windows |= bits[shift : shift + count] << np.uint64(31 - shift)
    return windows


@dataclass(frozen=True, slots=True)
class Toeplitz:
    """``NdisHashFunctionToeplitz`` with one secret key (``HashSecretKey``).

    A key of ``k`` bytes hashes inputs of up to ``k - 4`` bytes: the 40-byte key of
    ``NDIS_RECEIVE_SCALE_PARAMETERS`` revision 1 covers the 36-byte IPv6 4-tuple.
    """

    key: bytes = VERIFICATION_KEY
    table: U32 = field(init=False, repr=False, compare=False)
    """``table[i, v]``: the contribution of byte value ``v`` at input position ``i``."""
    _pairs: U32 | None = field(init=False, repr=False, compare=False, default=None)

    def __post_init__(self) -> None:
        if not isinstance(self.key, bytes | bytearray) or len(self.key) < 5:
            raise RssError("a Toeplitz key needs at least 5 bytes")
        if len(self.key) > NDIS_RSS_HASH_SECRET_KEY_MAX_SIZE_REVISION_1:
            raise RssError(
                f"key of {len(self.key)} bytes: NDIS keys are at most "
                f"{NDIS_RSS_HASH_SECRET_KEY_MAX_SIZE_REVISION_1} bytes"
            )
        object.__setattr__(self, "key", bytes(self.key))
        windows = _key_windows(self.key)
        positions = len(self.key) - 4
        # window of bit j (0 = most significant) of byte i is windows[8 * i + j]
        per_bit = windows[: positions * 8].reshape(positions, 8)
        values = np.arange(256, dtype=np.uint64)
        set_bits = (values[:, None] >> np.arange(7, -1, -1, dtype=np.uint64)) & np.uint64(1)
        table = np.zeros((positions, 256), dtype=np.uint64)
        for j in range(8):
            table ^= set_bits[None, :, j] * per_bit[:, j, None]
        object.__setattr__(self, "table", table.astype(np.uint32))

    @property
    def max_input(self) -> int:
        """The longest input, in bytes, this key can hash."""
        return int(self.table.shape[0])

    def hash(self, data: bytes | bytearray | memoryview) -> int:
        """The hash of one input byte string."""
        row = np.frombuffer(bytes(data), dtype=np.uint8)
        self._check_length(row.size)
        return int(np.bitwise_xor.reduce(self.table[np.arange(row.size), row]))

    def hash_rows(self, rows: U8) -> U32:
        """The hashes of a batch of equal-length inputs, one per row of a ``(n, L)`` array."""
        if rows.ndim != 2:
            raise RssError("hash_rows takes a two-dimensional (inputs x bytes) array")
        self._check_length(rows.shape[1])
        count, width = rows.shape
        out: U32 = np.zeros(count, dtype=np.uint32)
        if count == 0 or width == 0:
            return out
        if width % 2:
            for position in range(width):
                out ^= self.table[position][rows[:, position]]
            return out
        # Two bytes at a time: one gather per 16-bit column from a 65,536-entry table.
        words = np.ascontiguousarray(rows).view(">u2")
        return self.hash_words([words[:, column] for column in range(width // 2)])

    def hash_words(self, columns: Sequence[npt.NDArray[Any]]) -> U32:
        """The hashes of a batch given as 16-bit words: ``columns[j]`` holds, per input, the
        big-endian word at input bytes ``2j, 2j + 1`` (addresses viewed as ``>u2``, ports as
        they are). No input matrix is built: one gather per column."""
        if len(columns) > self.max_input // 2:
            raise RssError(
                f"input of {2 * len(columns)} bytes is longer than a {len(self.key)}-byte key "
                f"can hash ({self.max_input})"
            )
        pairs = self._pair_table()
        out: U32 = pairs[0][columns[0]].copy() if columns else np.zeros(0, np.uint32)
        for position in range(1, len(columns)):
            out ^= pairs[position][columns[position]]
        return out

    def _pair_table(self) -> U32:
        """``pairs[j, w]``: the contribution of the big-endian 16-bit word ``w`` at input
        bytes ``2j, 2j + 1`` (built on first use: 256 KiB per word position)."""
        if self._pairs is None:
            high = self.table[0::2][: self.max_input // 2]
            low = self.table[1::2][: self.max_input // 2]
            pairs = (high[:, :, None] ^ low[:, None, :]).reshape(high.shape[0], 65536)
            object.__setattr__(self, "_pairs", pairs)
        assert self._pairs is not None
        return self._pairs

    def _check_length(self, length: int) -> None:
        if length > self.max_input:
            raise RssError(
                f"input of {length} bytes is longer than a {len(self.key)}-byte key can hash "
                f"({self.max_input})"
            )


def hash_input(src: bytes, dst: bytes, sport: int | None = None, dport: int | None = None) -> bytes:
    """The Toeplitz input: source address, destination address, then source and destination
    ports when the hash type includes the transport ("RSS hashing functions")."""
    if len(src) != len(dst) or len(src) not in (4, 16):
        raise RssError("addresses must both be IPv4 (4 bytes) or both IPv6 (16 bytes)")
    if (sport is None) != (dport is None):
        raise RssError("give both ports or neither")
    if sport is None or dport is None:
        return src + dst
    if not (0 <= sport <= 0xFFFF and 0 <= dport <= 0xFFFF):
        raise RssError("ports are 16-bit numbers")
    return src + dst + sport.to_bytes(2, "big") + dport.to_bytes(2, "big")


def check_hash_types(enabled: int) -> NdisHashType:
    """Validate an ``NDIS_HASH_*`` combination: only defined bits, and at least one."""
    if enabled & ~int(ALL_HASH_TYPES):
        raise RssError(f"undefined NDIS_HASH_* bits in 0x{enabled:08x}")
    if not enabled:
        raise RssError("no NDIS_HASH_* type enabled")
    return NdisHashType(enabled)


def select_hash_type(
    enabled: NdisHashType,
    ip_version: int,
    l4_proto: int,
    is_fragment: bool = False,
) -> NdisHashType | None:
    """The hash type a NIC uses for one packet, or None when it must not hash it.

    "RSS hashing types": the transport hash when its flag is set and the packet carries that
    transport (never for a fragment: "In the case of a fragmented IP packet, NDIS_HASH_IPV4
    must be used"), else the address-only hash when its flag is set. For IPv6 the _EX types
    (home address / type-2 routing header address) are used when set; their addresses fall
    back to the plain ones when those headers are absent (``FlowKeys.src_ex`` / ``dst_ex``).
    """
    if ip_version == 4:
        tcp, udp, ip = NdisHashType.TCP_IPV4, NdisHashType.UDP_IPV4, NdisHashType.IPV4
    elif ip_version == 6:
        if enabled & IPV6_EX_HASH_TYPES:
            tcp, udp, ip = NdisHashType.TCP_IPV6_EX, NdisHashType.UDP_IPV6_EX, NdisHashType.IPV6_EX
        else:
            tcp, udp, ip = NdisHashType.TCP_IPV6, NdisHashType.UDP_IPV6, NdisHashType.IPV6
    else:
        return None
    if not is_fragment:
        if l4_proto == IPPROTO_TCP and enabled & tcp:
            return tcp
        if l4_proto == IPPROTO_UDP and enabled & udp:
            return udp
    if enabled & ip:
        return ip
    return None


def uses_ports(hash_type: NdisHashType) -> bool:
    """Whether a hash type covers the transport ports."""
    return bool(hash_type & ~(NdisHashType.IPV4 | NdisHashType.IPV6 | NdisHashType.IPV6_EX))


@dataclass(frozen=True, slots=True)
class FlowKeys:
    """The hash-relevant fields of a batch of frames, one row per frame.

    ``ip_version`` is 0 for a frame RSS cannot interpret (not IP, malformed), which gets no
    hash. ``src``/``dst`` hold IPv4 addresses in their first 4 bytes. For IPv6, ``src_ex`` /
    ``dst_ex`` hold the home address / type-2 routing address (equal to ``src`` / ``dst`` when
    those headers are absent).
    """

    ip_version: U8
    l4_proto: U8
    is_fragment: npt.NDArray[np.bool_]
    src: U8
    dst: U8
    src_ex: U8
    dst_ex: U8
    sport: npt.NDArray[np.uint16]
    dport: npt.NDArray[np.uint16]

    @classmethod
    def empty(cls, count: int) -> FlowKeys:
        return cls(
            ip_version=np.zeros(count, np.uint8),
            l4_proto=np.zeros(count, np.uint8),
            is_fragment=np.zeros(count, np.bool_),
            src=np.zeros((count, 16), np.uint8),
            dst=np.zeros((count, 16), np.uint8),
            src_ex=np.zeros((count, 16), np.uint8),
            dst_ex=np.zeros((count, 16), np.uint8),
            sport=np.zeros(count, np.uint16),
            dport=np.zeros(count, np.uint16),
        )

    def __len__(self) -> int:
        return int(self.ip_version.size)


_FAMILIES = (0, 4, 6)
_TRANSPORTS = (0, IPPROTO_TCP, IPPROTO_UDP)
_EX_TYPES = int(IPV6_EX_HASH_TYPES)


def _decision_table(enabled: NdisHashType) -> tuple[U32, npt.NDArray[np.uint8]]:
    """Per (family, transport) class: the hash type :func:`select_hash_type` picks, and the
    input layout (0 none, 1 IPv4, 2 IPv4 + ports, 3 IPv6, 4 IPv6 + ports, 5 IPv6 _EX,
    6 IPv6 _EX + ports). The batch path looks its decisions up here, so the rule lives in
    one place."""
    types = np.zeros(len(_FAMILIES) * len(_TRANSPORTS), dtype=np.uint32)
    layouts = np.zeros(types.size, dtype=np.uint8)
    for f, family in enumerate(_FAMILIES):
        for t, transport in enumerate(_TRANSPORTS):
            chosen = select_hash_type(enabled, family, transport)
            if chosen is None:
                continue
            index = f * len(_TRANSPORTS) + t
            types[index] = int(chosen)
            base = 1 if family == 4 else 5 if chosen & _EX_TYPES else 3
            layouts[index] = base + uses_ports(chosen)
    return types, layouts


def hash_flows(keys: FlowKeys, enabled: NdisHashType, toeplitz: Toeplitz) -> tuple[U32, U32]:
    """Hash a batch: ``(hash values, hash types)`` per frame; type 0 = not hashed (value 0).

    Each frame falls in one (family, transport) class — fragments count as "no transport" —
    whose hash type :func:`select_hash_type` decides once per batch; frames are then grouped
    by input layout and each group is hashed with one :meth:`Toeplitz.hash_rows`.
    """
    count = len(keys)
    lut_types, lut_layouts = _decision_table(enabled)
    family = (keys.ip_version == 4).astype(np.uint8) + (keys.ip_version == 6) * np.uint8(2)
    whole = ~keys.is_fragment
    transport = ((keys.l4_proto == IPPROTO_TCP) & whole).astype(np.uint8) + (
        (keys.l4_proto == IPPROTO_UDP) & whole
    ) * np.uint8(2)
    index = family * np.uint8(len(_TRANSPORTS)) + transport
    types: U32 = lut_types[index]
    layout = lut_layouts[index]
    hashes: U32 = np.zeros(count, dtype=np.uint32)
    counts = np.bincount(layout, minlength=7)
    present = np.flatnonzero(counts)
    for group in present.tolist():
        if group == 0:
            continue
        width = 2 if group <= 2 else 8  # address words
        ports = group in (2, 4, 6)
        src, dst = (keys.src_ex, keys.dst_ex) if group >= 5 else (keys.src, keys.dst)
        # the common case, one layout for the whole batch, needs no gather
        pick: slice | npt.NDArray[np.intp] = (
            slice(None) if present.size == 1 else np.flatnonzero(layout == group)
        )
        src_words = np.ascontiguousarray(src[pick]).view(">u2")
        dst_words = np.ascontiguousarray(dst[pick]).view(">u2")
        columns = [src_words[:, j] for j in range(width)] + [dst_words[:, j] for j in range(width)]
        if ports:
            columns += [keys.sport[pick], keys.dport[pick]]
        hashes[pick] = toeplitz.hash_words(columns)
    return hashes, types


@dataclass(frozen=True, slots=True)
class IndirectionTable:
    """``IndirectionTable`` of ``NDIS_RECEIVE_SCALE_PARAMETERS``: the low bits of the hash
    index it ("RSS configuration": the table size is a power of two, at most 128 entries in
    revision 1 of the parameters)."""

    entries: tuple[int, ...]

    def __post_init__(self) -> None:
        size = len(self.entries)
        if size == 0 or size & (size - 1):
            raise RssError(f"indirection table of {size} entries: the size must be a power of 2")
        if any(entry < 0 for entry in self.entries):
            raise RssError("indirection table entries are queue numbers (>= 0)")

    @classmethod
    def round_robin(cls, size: int, queues: int) -> IndirectionTable:
        """The usual spread: entry ``i`` points at queue ``i mod queues``."""
        if queues < 1:
            raise RssError("at least one queue")
        return cls(tuple(i % queues for i in range(size)))

    def queue_of(self, hashes: U32) -> npt.NDArray[np.int64]:
        """The queue of each hash value."""
        table = np.asarray(self.entries, dtype=np.int64)
        queues: npt.NDArray[np.int64] = table[hashes & np.uint32(len(self.entries) - 1)]
        return queues


VERIFICATION_TABLE: tuple[tuple[str, int, str, int, int, int], ...] = (
    ("161.142.100.80", 1766, "66.9.149.187", 2794, 0x323E8FC2, 0x51CCC178),
    ("65.69.140.83", 4739, "199.92.111.2", 14230, 0xD718262A, 0xC626B0EA),
    ("12.22.207.184", 38024, "24.19.198.95", 12898, 0xD2D0A5DE, 0x5C2B394A),
    ("209.142.163.6", 2217, "38.27.205.30", 48228, 0x82989176, 0xAFC7327F),
    ("202.188.127.2", 1303, "153.39.163.191", 44251, 0x5D1809C5, 0x10E828A2),
    ("3ffe:2501:200:3::1", 1766, "3ffe:2501:200:1fff::7", 2794, 0x2CC18CD5, 0x40207D3D),
    ("ff02::1", 4739, "3ffe:501:8::260:97ff:fe40:efab", 14230, 0x0F0C461C, 0xDDE51BBF),
    ("fe80::200:f8ff:fe21:67cf", 38024, "3ffe:1900:4545:3:200:f8ff:fe21:67cf", 44251,
     0x4B61E985, 0x02D1FEEF),
)  # fmt: skip
"""The rows of "Verifying the RSS hash calculation" as the page lists them: (destination,
destination port, source, source port, address-only hash, with-TCP hash) under
:data:`VERIFICATION_KEY`. The page lists the destination first; the hash input is source
first. What a conformance check holds a miniport's hash to."""

FRAME_HASH_TYPES = (
    NdisHashType.IPV4 | NdisHashType.TCP_IPV4 | NdisHashType.IPV6 | NdisHashType.TCP_IPV6
)
"""The hash types :func:`rss_hash` applies: the TCP 4-tuple, else the addresses."""


def rss_hash(key: bytes, frame: bytes | bytearray | memoryview) -> int:
    """The Toeplitz hash a NIC computes for one received Ethernet frame with
    :data:`FRAME_HASH_TYPES` enabled (0 when no type applies: not IP)."""
    layout = parse_frame(frame)
    chosen = select_hash_type(
        FRAME_HASH_TYPES, layout.ip_version, layout.l4_proto if layout.l4_len else 0,
        layout.is_fragment,
    )  # fmt: skip
    if chosen is None:
        return 0
    view = bytes(frame)
    l3 = layout.l3_offset
    if layout.ip_version == 4:
        src, dst = view[l3 + 12 : l3 + 16], view[l3 + 16 : l3 + 20]
    else:
        src, dst = view[l3 + 8 : l3 + 24], view[l3 + 24 : l3 + 40]
    data = src + dst
    if uses_ports(chosen):
        data += view[layout.l4_offset : layout.l4_offset + 4]
    return _toeplitz(bytes(key)).hash(data)


@lru_cache(maxsize=8)
def _toeplitz(key: bytes) -> Toeplitz:
    return Toeplitz(key)
