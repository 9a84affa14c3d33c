"""Pure logic: no Celery, FastAPI, SQLAlchemy, boto3 or docker imports (see DESIGN.md)."""
