"""ndis_offload.conformance"""
