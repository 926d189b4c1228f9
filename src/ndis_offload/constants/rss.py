"""Receive-side scaling hash values (``ntddndis.h``): ``NdisHashFunction*`` and
``NDIS_HASH_*`` (the hash types a ``NDIS_RECEIVE_SCALE_PARAMETERS.HashInformation`` carries)."""

from __future__ import annotations

from enum import IntFlag


class NdisHashFunction(IntFlag):
    """``NdisHashFunction*``: the low byte of the hash information
    (``NDIS_HASH_FUNCTION_MASK``). Only Toeplitz is available to miniports."""

    Toeplitz = 0x00000001
    Reserved1 = 0x00000002
    Reserved2 = 0x00000004
    Reserved3 = 0x00000008


class NdisHashType(IntFlag):
    """``NDIS_HASH_*`` hash types (``NDIS_HASH_TYPE_MASK``); the UDP types are NDIS 6.80."""

    IPV4 = 0x00000100
    TCP_IPV4 = 0x00000200
    IPV6 = 0x00000400
    IPV6_EX = 0x00000800
    TCP_IPV6 = 0x00001000
    TCP_IPV6_EX = 0x00002000
    UDP_IPV4 = 0x00004000
    UDP_IPV6 = 0x00008000
    UDP_IPV6_EX = 0x00010000


NDIS_HASH_FUNCTION_MASK = 0x000000FF
NDIS_HASH_TYPE_MASK = 0x00FFFF00

NDIS_RSS_HASH_SECRET_KEY_MAX_SIZE_REVISION_1 = 40
"""The 40-byte secret key size of NDIS_RECEIVE_SCALE_PARAMETERS revision 1."""
