"""ndis-offload: Windows NDIS 6.x task offload, executable."""
__version__ = "0.1.0"
