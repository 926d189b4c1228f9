"""Public names of ``ndis_offload``, listed once: type checkers read them here,
and ``__init__.py`` imports each on first use (``lazy_loader.attach_stub``)."""

from .constants.objects import NdisObjectType as NdisObjectType
from .constants.offload import (
    NdisEncapsulation as NdisEncapsulation,
    NdisOffloadSet as NdisOffloadSet,
)
from .constants.oid import Oid as Oid
from .constants.registry import CONSTANTS as CONSTANTS, constant_value as constant_value
from .constants.status import NdisStatus as NdisStatus
from .engine import (
    Segmentation as Segmentation,
    insert_checksums as insert_checksums,
    segment_tcp as segment_tcp,
    segment_udp as segment_udp,
    transmit_checksum as transmit_checksum,
    transmit_lso as transmit_lso,
    transmit_uso as transmit_uso,
)
from .errors import (
    BackendError as BackendError,
    DecodeError as DecodeError,
    EncodeError as EncodeError,
    NdisError as NdisError,
    PacketError as PacketError,
    RequestError as RequestError,
    StateError as StateError,
    TruncatedError as TruncatedError,
)
from .stack.core import Binding as Binding, BindParameters as BindParameters, NdisStack as NdisStack
from .stack.datapath import (
    NetBufferList as NetBufferList,
    ReceiveIndication as ReceiveIndication,
    SendCompletion as SendCompletion,
    SoftwareDatapath as SoftwareDatapath,
)
from .stack.features import FEATURE_TABLE as FEATURE_TABLE, Feature as Feature
from .stack.filter import (
    FailOidFilter as FailOidFilter,
    FilterDriver as FilterDriver,
    OffloadMaskFilter as OffloadMaskFilter,
    RecordingFilter as RecordingFilter,
)
from .stack.miniport import (
    Behaviour as Behaviour,
    Miniport as Miniport,
    MiniportContext as MiniportContext,
    OffloadAttributes as OffloadAttributes,
    ReferenceMiniport as ReferenceMiniport,
)
from .stack.profiles import (
    PROFILES as PROFILES,
    AdapterProfile as AdapterProfile,
    get_profile as get_profile,
)
from .stack.protocol import ProtocolDriver as ProtocolDriver
from .stack.requests import (
    OidCompletion as OidCompletion,
    OidRequest as OidRequest,
    RequestType as RequestType,
    StatusIndication as StatusIndication,
)
from .structs import (
    NdisObjectHeader as NdisObjectHeader,
    NdisOffload as NdisOffload,
    NdisOffloadEncapsulation as NdisOffloadEncapsulation,
    NdisOffloadEncapsulationFamily as NdisOffloadEncapsulationFamily,
    NdisOffloadParameters as NdisOffloadParameters,
)

__version__: str
