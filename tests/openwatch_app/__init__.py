"""A stand-in for OpenWatch's backend/app/celery_app.py, configured as OpenWatch configures it."""
