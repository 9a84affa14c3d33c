"""The database being backed up: server facts, the canary, and the snapshot the dump is taken in."""
