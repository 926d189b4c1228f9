"""ndis_offload.io"""
