"""ndis-offload: Windows NDIS 6.x task offload, executable.

The curated public API: NDIS constants and binary-exact structures, the adapter stack model
(NDIS core, reference miniport, filters, protocol drivers) and the software offload engine.
"""

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
