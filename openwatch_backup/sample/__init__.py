"""A sample OpenWatch database for tests, demos and benchmarks: schema, realistic data, awkward rows."""

from openwatch_backup.sample.awkward import add_awkward_data
from openwatch_backup.sample.credentials import credentials_fit
from openwatch_backup.sample.seed import create_schema, is_seeded, seed

__all__ = ["add_awkward_data", "create_schema", "credentials_fit", "is_seeded", "seed"]
