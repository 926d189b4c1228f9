"""ndis-offload: Windows NDIS 6.x task offload, executable.

The curated public API: NDIS constants and binary-exact structures, the adapter stack model
(NDIS core, reference miniport, filters, protocol drivers) and the software offload engine.
"""

import lazy_loader

__version__ = "0.1.0"

# The public names are listed once, in ``__init__.pyi`` (what type checkers read); each is
# imported on first use (PEP 562), so a ``pcap`` command does not load the NDIS model.
__getattr__, __dir__, __all__ = lazy_loader.attach_stub(__name__, __file__)
