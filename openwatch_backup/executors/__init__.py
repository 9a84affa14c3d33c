"""How PostgreSQL client programs run: local subprocesses now, `docker exec` later."""
