"""ndis_offload.stack"""
