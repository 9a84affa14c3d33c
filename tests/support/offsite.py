"""Off-site test settings: a service, or a CLI environment, whose S3 storage is the session's moto server.

Build on the fixtures of tests/support/moto_server.py (`moto_endpoint`, `bucket`, `aws_env`): they put test
credentials where boto3 looks, so nothing here carries a credential.
"""

from __future__ import annotations

from typing import Any

from tests.support.moto_server import PREFIX, REGION


def s3_overrides(endpoint: str, bucket: str, **extra: Any) -> dict[str, Any]:
    """Settings fields (for make_service / load_settings) that turn off-site copies on against moto."""
    return {"s3_bucket": bucket, "s3_prefix": PREFIX, "s3_region": REGION, "s3_endpoint_url": endpoint,
            "s3_addressing_style": "path", **extra}


def s3_env(endpoint: str, bucket: str, **extra: str) -> dict[str, str]:
    """The same as environment variables, for the CLI run as a process (add them to cli_env's)."""
    return {f"OPENWATCH_BACKUP_{name.upper()}": str(value) for name, value in s3_overrides(endpoint, bucket).items()} \
        | extra
