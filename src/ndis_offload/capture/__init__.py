"""Sans-IO capture analysis: per-frame checksum diagnosis, flows, MTU / MSS tracking."""
