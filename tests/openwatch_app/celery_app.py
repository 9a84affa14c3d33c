"""The app tests start workers and beat with (`-A tests.openwatch_app.celery_app`): OpenWatch's Celery app
as OpenWatch configures it, the same module the embedded demo stack uses."""

from openwatch_backup.devstack.celery_app import QUEUES, celery_app

__all__ = ["QUEUES", "celery_app"]
