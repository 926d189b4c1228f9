"""A TAP device opened with ``IFF_TAP | IFF_NO_PI | IFF_VNET_HDR`` (``drivers/net/tun.c``):
create it (optionally inside a namespace), set its offloads, read and write frames, and read
the device features the kernel derived (``ETHTOOL_GFEATURES``), the oracle for
``TUNSETOFFLOAD``."""

from __future__ import annotations

import ctypes
import errno
import fcntl
import os
import socket
import struct

from ndis_offload.errors import BackendError
from ndis_offload.io import netns
from ndis_offload.io.tap.linux import (
    IFF_NO_PI,
    IFF_TAP,
    IFF_VNET_HDR,
    TUNGETFEATURES,
    TUNSETIFF,
    TUNSETOFFLOAD,
    TUNSETVNETHDRSZ,
    TunOffload,
)
from ndis_offload.io.tap.vnet_hdr import VIRTIO_NET_HDR_LEN

IFNAMSIZ = 16
SIOCETHTOOL = 0x8946
ETHTOOL_GSTRINGS = 0x1B
ETHTOOL_GSSET_INFO = 0x37
ETHTOOL_GFEATURES = 0x3A
ETH_SS_FEATURES = 4
ETH_GSTRING_LEN = 32


def _ifreq(name: str, flags: int = 0) -> bytes:
    raw = name.encode()
    if not raw or len(raw) >= IFNAMSIZ:
        raise BackendError(f"interface name {name!r} must be 1-15 bytes")
    return struct.pack("16sH22x", raw, flags)


class TapDevice:
    """One TAP queue. ``fd`` is non-blocking; frames read start with a virtio_net_hdr."""

    def __init__(self, name: str, *, namespace: str | None = None) -> None:
        self.name = name
        self.namespace = namespace
        self.offload = 0
        # The device is created in the namespace of whoever opened /dev/net/tun
        # (``tun_chr_open`` takes ``current->nsproxy->net_ns``).
        try:
            if namespace:
                with netns.inside(namespace):
                    fd = os.open("/dev/net/tun", os.O_RDWR | os.O_NONBLOCK | os.O_CLOEXEC)
            else:
                fd = os.open("/dev/net/tun", os.O_RDWR | os.O_NONBLOCK | os.O_CLOEXEC)
        except OSError as exc:
            raise BackendError(f"/dev/net/tun: {exc.strerror}") from exc
        self.fd = fd
        try:
            features = struct.unpack("I", fcntl.ioctl(fd, TUNGETFEATURES, b"\0" * 4))[0]
            if not features & IFF_VNET_HDR:
                raise BackendError("this kernel's tun driver has no IFF_VNET_HDR")
            request = _ifreq(name, IFF_TAP | IFF_NO_PI | IFF_VNET_HDR)
            fcntl.ioctl(fd, TUNSETIFF, request)
            fcntl.ioctl(fd, TUNSETVNETHDRSZ, struct.pack("i", VIRTIO_NET_HDR_LEN))
        except OSError as exc:
            os.close(fd)
            raise BackendError(f"TAP {name}: {exc.strerror}") from exc
        except BaseException:
            os.close(fd)
            raise
        self.uso_supported = self._probe_uso()
        self.set_offload(0)

    def _probe_uso(self) -> bool:
        """Linux >= 6.2 accepts ``TUN_F_USO4 | TUN_F_USO6``; older kernels say EINVAL."""
        try:
            flags = TunOffload.CSUM | TunOffload.USO4 | TunOffload.USO6
            fcntl.ioctl(self.fd, TUNSETOFFLOAD, int(flags))
        except OSError as exc:
            if exc.errno == errno.EINVAL:
                return False
            raise BackendError(f"TUNSETOFFLOAD on {self.name}: {exc.strerror}") from exc
        return True

    def set_offload(self, flags: int) -> None:
        """``ioctl(TUNSETOFFLOAD, flags)``: which offloaded frames the kernel may hand us."""
        try:
            fcntl.ioctl(self.fd, TUNSETOFFLOAD, flags)
        except OSError as exc:
            raise BackendError(f"TUNSETOFFLOAD 0x{flags:x} on {self.name}: {exc.strerror}") from exc
        self.offload = flags

    def configure(self, address: str, *, mtu: int = 1500, mac: str | None = None) -> None:
        """Bring the device up with ``address`` (CIDR) and ``mtu`` (``ip link`` / ``ip addr``)."""
        if mac:
            netns.ip(self.namespace, "link", "set", "dev", self.name, "address", mac)
        netns.ip(self.namespace, "link", "set", "dev", self.name, "mtu", str(mtu), "up")
        netns.ip(self.namespace, "addr", "add", address, "dev", self.name)

    def device_features(self) -> dict[str, bool]:
        """The device's active features (see :func:`device_features`)."""
        return device_features(self.name, self.namespace)

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1


def device_features(name: str, namespace: str | None = None) -> dict[str, bool]:
    """A device's active features by ethtool name (what ``ethtool -k`` shows), read with
    ``SIOCETHTOOL`` from a socket in its namespace."""
    try:
        if namespace:
            with netns.inside(namespace):
                sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        else:
            sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        with sock:
            return _features(sock, name)
    except OSError as exc:
        raise BackendError(f"ethtool features of {name}: {exc.strerror}") from exc


def _ethtool(sock: socket.socket, name: str, buffer: ctypes.Array[ctypes.c_char]) -> None:
    request = struct.pack("16sP16x", name.encode(), ctypes.addressof(buffer))
    fcntl.ioctl(sock.fileno(), SIOCETHTOOL, request)


def _features(sock: socket.socket, name: str) -> dict[str, bool]:
    info = ctypes.create_string_buffer(struct.pack("IIQI", ETHTOOL_GSSET_INFO, 0, 1 << 4, 0))
    _ethtool(sock, name, info)
    count = struct.unpack_from("I", info.raw, 16)[0]
    strings = ctypes.create_string_buffer(
        struct.pack("III", ETHTOOL_GSTRINGS, ETH_SS_FEATURES, count) + bytes(count * 32)
    )
    _ethtool(sock, name, strings)
    blocks = (count + 31) // 32
    feats = ctypes.create_string_buffer(
        struct.pack("II", ETHTOOL_GFEATURES, blocks) + bytes(16 * blocks)
    )
    _ethtool(sock, name, feats)
    out: dict[str, bool] = {}
    for i in range(count):
        raw = strings.raw[12 + i * ETH_GSTRING_LEN : 12 + (i + 1) * ETH_GSTRING_LEN]
        label = raw.split(b"\0", 1)[0].decode()
        active = struct.unpack_from("I", feats.raw, 8 + 16 * (i // 32) + 8)[0]
        if label:
            out[label] = bool(active >> (i % 32) & 1)
    return out


__all__ = ["TapDevice", "device_features"]
