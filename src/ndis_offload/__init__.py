"""ndis-offload: Windows NDIS 6.x task offload, executable.

The curated public API: NDIS constants and binary-exact structures, the adapter stack model
(NDIS core, reference miniport, filters, protocol drivers) and the software offload engine.
"""

from typing import TYPE_CHECKING

from ndis_offload._lazy import lazy_exports

if TYPE_CHECKING:
    from ndis_offload.constants.objects import NdisObjectType
    from ndis_offload.constants.offload import NdisEncapsulation, NdisOffloadSet
    from ndis_offload.constants.oid import Oid
    from ndis_offload.constants.registry import CONSTANTS, constant_value
    from ndis_offload.constants.status import NdisStatus
    from ndis_offload.engine import (
        Segmentation,
        insert_checksums,
        segment_tcp,
        segment_udp,
        transmit_checksum,
        transmit_lso,
        transmit_uso,
    )
    from ndis_offload.errors import (
        BackendError,
        DecodeError,
        EncodeError,
        NdisError,
        PacketError,
        RequestError,
        StateError,
        TruncatedError,
    )
    from ndis_offload.stack.core import Binding, BindParameters, NdisStack
    from ndis_offload.stack.datapath import (
        NetBufferList,
        ReceiveIndication,
        SendCompletion,
        SoftwareDatapath,
    )
    from ndis_offload.stack.features import FEATURE_TABLE, Feature
    from ndis_offload.stack.filter import (
        FailOidFilter,
        FilterDriver,
        OffloadMaskFilter,
        RecordingFilter,
    )
    from ndis_offload.stack.miniport import (
        Behaviour,
        Miniport,
        MiniportContext,
        OffloadAttributes,
        ReferenceMiniport,
    )
    from ndis_offload.stack.profiles import PROFILES, AdapterProfile, get_profile
    from ndis_offload.stack.protocol import ProtocolDriver
    from ndis_offload.stack.requests import OidCompletion, OidRequest, RequestType, StatusIndication
    from ndis_offload.structs import (
        NdisObjectHeader,
        NdisOffload,
        NdisOffloadEncapsulation,
        NdisOffloadEncapsulationFamily,
        NdisOffloadParameters,
    )

__version__ = "0.1.0"

_EXPORTS = {
    "NdisObjectType": "ndis_offload.constants.objects",
    "NdisEncapsulation": "ndis_offload.constants.offload",
    "NdisOffloadSet": "ndis_offload.constants.offload",
    "Oid": "ndis_offload.constants.oid",
    "CONSTANTS": "ndis_offload.constants.registry",
    "constant_value": "ndis_offload.constants.registry",
    "NdisStatus": "ndis_offload.constants.status",
    "Segmentation": "ndis_offload.engine",
    "insert_checksums": "ndis_offload.engine",
    "segment_tcp": "ndis_offload.engine",
    "segment_udp": "ndis_offload.engine",
    "transmit_checksum": "ndis_offload.engine",
    "transmit_lso": "ndis_offload.engine",
    "transmit_uso": "ndis_offload.engine",
    "BackendError": "ndis_offload.errors",
    "DecodeError": "ndis_offload.errors",
    "EncodeError": "ndis_offload.errors",
    "NdisError": "ndis_offload.errors",
    "PacketError": "ndis_offload.errors",
    "RequestError": "ndis_offload.errors",
    "StateError": "ndis_offload.errors",
    "TruncatedError": "ndis_offload.errors",
    "Binding": "ndis_offload.stack.core",
    "BindParameters": "ndis_offload.stack.core",
    "NdisStack": "ndis_offload.stack.core",
    "NetBufferList": "ndis_offload.stack.datapath",
    "ReceiveIndication": "ndis_offload.stack.datapath",
    "SendCompletion": "ndis_offload.stack.datapath",
    "SoftwareDatapath": "ndis_offload.stack.datapath",
    "FEATURE_TABLE": "ndis_offload.stack.features",
    "Feature": "ndis_offload.stack.features",
    "FailOidFilter": "ndis_offload.stack.filter",
    "FilterDriver": "ndis_offload.stack.filter",
    "OffloadMaskFilter": "ndis_offload.stack.filter",
    "RecordingFilter": "ndis_offload.stack.filter",
    "Behaviour": "ndis_offload.stack.miniport",
    "Miniport": "ndis_offload.stack.miniport",
    "MiniportContext": "ndis_offload.stack.miniport",
    "OffloadAttributes": "ndis_offload.stack.miniport",
    "ReferenceMiniport": "ndis_offload.stack.miniport",
    "PROFILES": "ndis_offload.stack.profiles",
    "AdapterProfile": "ndis_offload.stack.profiles",
    "get_profile": "ndis_offload.stack.profiles",
    "ProtocolDriver": "ndis_offload.stack.protocol",
    "OidCompletion": "ndis_offload.stack.requests",
    "OidRequest": "ndis_offload.stack.requests",
    "RequestType": "ndis_offload.stack.requests",
    "StatusIndication": "ndis_offload.stack.requests",
    "NdisObjectHeader": "ndis_offload.structs",
    "NdisOffload": "ndis_offload.structs",
    "NdisOffloadEncapsulation": "ndis_offload.structs",
    "NdisOffloadEncapsulationFamily": "ndis_offload.structs",
    "NdisOffloadParameters": "ndis_offload.structs",
}
"""Each public name and the module it comes from, imported on first use (PEP 562), so a
``pcap`` command does not load the NDIS model."""

__getattr__, __dir__ = lazy_exports(globals(), _EXPORTS)

__all__ = [
    "CONSTANTS",
    "PROFILES",
    "AdapterProfile",
    "Behaviour",
    "BackendError",
    "BindParameters",
    "Binding",
    "DecodeError",
    "EncodeError",
    "FEATURE_TABLE",
    "FailOidFilter",
    "Feature",
    "FilterDriver",
    "Miniport",
    "MiniportContext",
    "NdisEncapsulation",
    "NdisError",
    "NdisObjectHeader",
    "NdisObjectType",
    "NdisOffload",
    "NdisOffloadEncapsulation",
    "NdisOffloadEncapsulationFamily",
    "NdisOffloadParameters",
    "NdisOffloadSet",
    "NdisStack",
    "NdisStatus",
    "NetBufferList",
    "OffloadAttributes",
    "OffloadMaskFilter",
    "Oid",
    "OidCompletion",
    "OidRequest",
    "PacketError",
    "ProtocolDriver",
    "ReceiveIndication",
    "RecordingFilter",
    "ReferenceMiniport",
    "RequestError",
    "RequestType",
    "Segmentation",
    "SendCompletion",
    "SoftwareDatapath",
    "StateError",
    "StatusIndication",
    "TruncatedError",
    "constant_value",
    "get_profile",
    "insert_checksums",
    "segment_tcp",
    "segment_udp",
    "transmit_checksum",
    "transmit_lso",
    "transmit_uso",
]
