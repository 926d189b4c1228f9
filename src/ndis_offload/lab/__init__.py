"""ndis_offload.lab: sans-IO uses of the NDIS model: scenarios, the demo, the conformance
battery and real-driver variants."""
