"""Where artifacts live. Every backend implements storage.base.Storage: local.py (a directory), s3.py (S3 and
S3-compatible stores; the only boto3 importer, loaded only when off-site is configured), memory.py (a fake for
tests). factory.py builds them from the settings; probe.py is `offsite test`."""
