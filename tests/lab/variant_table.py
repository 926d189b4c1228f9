"""Which checks each real-driver variant fails, grouped by the documented deviation that
predicts them (``lab/variants.py``; the README's conformance section shows this table)."""

from __future__ import annotations

PARAMETER_FIELDS = [f"parameters-field-{f}" for f in (
    "IPv4Checksum", "TCPIPv4Checksum", "UDPIPv4Checksum", "TCPIPv6Checksum", "UDPIPv6Checksum",
    "LsoV1", "LsoV2IPv4", "LsoV2IPv6", "RscIPv4", "RscIPv6", "UdpSegmentation-IPv4",
    "UdpSegmentation-IPv6")]  # fmt: skip
INVALID_DATA = [f"parameters-invalid-data-{x}" for x in (
    "checksum-value", "lso-value", "rsc-value", "uso-value", "header-type", "header-revision",
    "header-size")]  # fmt: skip
BOTH = ("ipv4", "ipv6")


def per_family(*stems: str) -> list[str]:
    return [f"encapsulation-{s}-{f}" for s in stems for f in BOTH]


VARIANT_FAILURES: dict[str, dict[str, list[str]]] = {
    "reference": {},
    "netkvm": {
        "encapsulation: only ON/OFF combinations (NO_CHANGE fails with INVALID_PARAMETER)":
            per_family("supported", "no-change-keeps") + ["encapsulation-query-after-set"],
        "encapsulation: OFF/ON switch only the TX path, the reported configuration stays":
            per_family("off-deactivates", "on-reactivates"),
        "parameters: header unchecked, out-of-range values ignored (SUCCESS, not "
        "INVALID_DATA)": INVALID_DATA,
        "parameters: RSC applied before the rest is validated (non-atomic, silent: caught "
        "by traffic)": ["parameters-atomic", "parameters-flip-and-restore-persists"],
        "parameters: LsoV1 and LsoV2IPv4 switch together":
            ["parameters-field-LsoV1", "parameters-field-LsoV2IPv4"],
        "RSC statistics: CoalescedOctets adds each SCU's IP datagram (L2PayloadLen), not its "
        "TCP payload": ["rsc-statistics-counts"],
        "transmit statistics: one packet of the large send's size per NET_BUFFER, not its "
        "segments": ["uso-transmit-statistics"],
        "RSC statistics: Aborts is always 0":
            [f"rsc-aborts-{e}" for e in ("E1-resources", "E2-bad-checksum", "E3-flags",
                                         "E4-tcp-option",
                                         "E5-ip-options", "E6-fragment", "E8-ecn")],
    },
    "netvsp": {
        "encapsulation: header problems are INVALID_DATA, a short buffer too":
            ["encapsulation-bad-header-type", "encapsulation-bad-header-revision",
             "encapsulation-bad-header-size", "encapsulation-short-buffer"],
        "encapsulation: a pure validator (Enabled unchecked, nothing stored, no indication)":
            per_family("bad-enabled", "supported", "off-deactivates",
                                                       "on-reactivates"),
        "encapsulation: ON needs 802_3 == and HeaderSize 14, else NOT_SUPPORTED":
            per_family("unsupported", "failed-set-atomic"),
        "parameters: header problems INVALID_DATA (short buffer too), values out of range "
        "ignored": INVALID_DATA[:4] + ["parameters-short-buffer"],
        "parameters: unsupported requests clamped silently; RSC, USO and LsoV1 not handled":
            ["parameters-atomic", "parameters-flip-and-restore-persists", "parameters-field-LsoV1",
             "parameters-field-RscIPv4", "parameters-field-RscIPv6",
             "parameters-field-UdpSegmentation-IPv4", "parameters-field-UdpSegmentation-IPv6",
             "lso-dropped-after-disable", "rsc-not-before-enabled"],
    },
    "gvnic": {
        "encapsulation: Size unchecked, Enabled other than ON/OFF ignored, no NOT_SUPPORTED":
            ["encapsulation-bad-header-size", "encapsulation-not-supported-without-offload"]
            + per_family("bad-enabled"),
        "encapsulation: switches TCP/UDP checksum + LSO only, indicates only on change, "
        "validates ON against the hardware after applying OFF":
            per_family("supported", "off-deactivates", "on-reactivates", "failed-set-atomic"),
        "parameters: InformationBufferLength must equal its sizeof (32): every revision-5 "
        "set is BUFFER_OVERFLOW": PARAMETER_FIELDS + INVALID_DATA + [
            "parameters-indicates-current-config",
            "parameters-skip-registry-update", "parameters-flip-and-restore-persists",
            "parameters-revision-gated-RscIPv4", "parameters-revision-gated-RscIPv6",
            "parameters-revision-gated-UdpSegmentation-IPv4",
            "parameters-revision-gated-UdpSegmentation-IPv6",
            "lso-dropped-after-disable", "rsc-not-before-enabled"],
    },
    "xennet": {
        "encapsulation: a short buffer is a SUCCESS no-op; no header checks; no NOT_SUPPORTED":
            ["encapsulation-short-buffer", "encapsulation-bad-header-type",
             "encapsulation-bad-header-revision", "encapsulation-bad-header-size",
             "encapsulation-not-supported-without-offload"] + per_family("bad-enabled"),
        "encapsulation: rebuilds from the registry (OFF switches nothing) and indicates even "
        "on failure": per_family("off-deactivates", "on-reactivates", "unsupported",
                                 "failed-set-atomic"),
        "parameters: checksum NO_CHANGE (0) disables; sizeof 20 (no RSC/USO); LsoV1 and "
        "IPsec fields must be NO_CHANGE": PARAMETER_FIELDS + INVALID_DATA + [
            "parameters-atomic",
            "parameters-indicates-current-config", "parameters-skip-registry-update",
            "parameters-flip-and-restore-persists", "lso-dropped-after-disable",
            "rsc-not-before-enabled"],
    },
}  # fmt: skip
