"""Binary-exact NDIS structures: decode / encode / validate, one declaration each."""

from typing import Any

import lazy_loader

# The public names are listed once, in ``__init__.pyi``; each is imported on first use
# (PEP 562): building the layouts costs a noticeable part of a second, which a ``pcap``
# command should not pay.
_lookup, _dir, __all__ = lazy_loader.attach_stub(__name__, __file__)
__all__ = ["STRUCTS", *__all__]

_STRUCT_NAMES = (
    "NdisObjectHeader",
    "NdisOffloadEncapsulation",
    "NdisTcpIpChecksumOffload",
    "NdisTcpLargeSendOffloadV1",
    "NdisTcpLargeSendOffloadV2",
    "NdisIpsecOffloadV1",
    "NdisIpsecOffloadV2",
    "NdisTcpRecvSegCoalesceOffload",
    "NdisEncapsulatedPacketTaskOffload",
    "NdisEncapsulatedPacketTaskOffloadV2",
    "NdisRfc6877464XlatOffload",
    "NdisUdpSegmentationOffload",
    "NdisOffload",
    "NdisOffloadParameters",
    "NdisTcpIpChecksumNetBufferListInfo",
    "NdisTcpLargeSendOffloadNetBufferListInfo",
    "NdisUdpSegmentationOffloadNetBufferListInfo",
    "NdisRscNblInfo",
    "NdisStatisticsInfo",
    "NdisRscStatisticsInfo",
)
"""The names of :data:`STRUCTS`, in header order."""


def __dir__() -> list[str]:
    return sorted({*_dir(), "STRUCTS"})


def __getattr__(name: str) -> Any:
    if name == "STRUCTS":
        value = tuple(_lookup(n) for n in _STRUCT_NAMES)
        globals()[name] = value
        return value
    return _lookup(name)
