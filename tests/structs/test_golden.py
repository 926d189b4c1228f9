"""Golden byte vectors written by hand from the documented layout of
NDIS_OFFLOAD_ENCAPSULATION: {UCHAR Type; UCHAR Revision; USHORT Size} then, for IPv4 and
IPv6, {ULONG Enabled; ULONG EncapsulationType; ULONG HeaderSize}, little-endian."""

from __future__ import annotations

from ndis_offload.constants.offload import NdisEncapsulation
from ndis_offload.structs import NdisOffloadEncapsulation, NdisOffloadEncapsulationFamily

ENABLE_802_3_HEADER_14 = bytes.fromhex(
    "a8"  # Header.Type = NDIS_OBJECT_TYPE_OFFLOAD_ENCAPSULATION
    "01"  # Header.Revision = NDIS_OFFLOAD_ENCAPSULATION_REVISION_1
    "1c00"  # Header.Size = 28
    "01000000"  # IPv4.Enabled = NDIS_OFFLOAD_SET_ON
    "02000000"  # IPv4.EncapsulationType = NDIS_ENCAPSULATION_IEEE_802_3
    "0e000000"  # IPv4.HeaderSize = 14
    "01000000"  # IPv6.Enabled = NDIS_OFFLOAD_SET_ON
    "02000000"  # IPv6.EncapsulationType = NDIS_ENCAPSULATION_IEEE_802_3
    "0e000000"  # IPv6.HeaderSize = 14
)

DISABLE_BOTH = bytes.fromhex(
    "a8011c00"
    "02000000"
    "00000000"
    "00000000"  # IPv4: NDIS_OFFLOAD_SET_OFF, type 0, size 0
    "02000000"
    "00000000"
    "00000000"  # IPv6: NDIS_OFFLOAD_SET_OFF, type 0, size 0
)


def test_enable_802_3_encodes_to_golden_bytes() -> None:
    enable = NdisOffloadEncapsulation(
        IPv4=NdisOffloadEncapsulationFamily.on(NdisEncapsulation.IEEE_802_3, 14),
        IPv6=NdisOffloadEncapsulationFamily.on(NdisEncapsulation.IEEE_802_3, 14),
    )
    assert enable.encode() == ENABLE_802_3_HEADER_14
    assert NdisOffloadEncapsulation.decode(ENABLE_802_3_HEADER_14) == enable


def test_disable_encodes_to_golden_bytes() -> None:
    disable = NdisOffloadEncapsulation(
        IPv4=NdisOffloadEncapsulationFamily.off(), IPv6=NdisOffloadEncapsulationFamily.off()
    )
    assert disable.encode() == DISABLE_BOTH
    decoded = NdisOffloadEncapsulation.decode(DISABLE_BOTH)
    assert decoded.IPv4.Enabled == 2 and decoded.IPv6.EncapsulationType == 0
