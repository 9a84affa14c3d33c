"""Each operation runs as a recorded run: backup now; verify, restore, prune and drill later."""
