"""The tamper-evident audit log: events, Merkle tree, signed checkpoints, verification."""
