"""Where PostgreSQL client programs run: on this machine (local.py) or in the database container (docker.py),
behind one interface (base.py), chosen by OPENWATCH_BACKUP_EXECUTOR (select.py)."""
