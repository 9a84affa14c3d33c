"""The backup_runs catalog: model, engine, run recorder."""
