//! eDiscovery exports read back from the archive (RSMF 2.0, JSONL, CSV, HTML) and
//! verification of archives and exports against their recorded SHA-256 digests.
