"""One-line StorageErrors for S3 failures, classified without importing botocore.

storage/s3.py is the only module that imports boto3/botocore; it catches their exceptions and hands them
here. Classifying by class name (and the `response` dict a ClientError carries) keeps this module free of the
import and lets the unit tests build the cases without a network. Messages name the cause and the fix, never a
credential: the server's own message is passed through the redactor with the credentials in use.
"""

from __future__ import annotations

import socket
import ssl
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

from openwatch_backup.errors import (
    BackupError,
    StorageAccessDenied,
    StorageBucketMissing,
    StorageClockSkew,
    StorageCredentialsError,
    StorageError,
    StorageObjectMissing,
    StorageTLSError,
    StorageUnreachable,
)

MAX_SKEW_SECONDS = 15 * 60  # what S3 tolerates before RequestTimeTooSkewed
_CREDENTIAL_CODES = {"InvalidAccessKeyId", "SignatureDoesNotMatch", "InvalidToken", "ExpiredToken",
                     "TokenRefreshRequired", "InvalidSecurity"}
_REGION_CODES = {"AuthorizationHeaderMalformed", "PermanentRedirect", "IllegalLocationConstraintException"}
_CONNECTION_NAMES = {"EndpointConnectionError", "ConnectTimeoutError", "ConnectionClosedError", "ReadTimeoutError",
                     "ResponseStreamingError", "ProxyConnectionError", "HTTPClientError", "ConnectionError",
                     "ProtocolError", "NewConnectionError", "MaxRetryError", "IncompleteReadError"}
_CREDENTIAL_NAMES = {"NoCredentialsError", "PartialCredentialsError", "CredentialRetrievalError",
                     "UnauthorizedSSOTokenError", "TokenRetrievalError"}
_CHAIN_FIX = ("set them in boto3's chain: AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, ~/.aws/credentials "
              "(AWS_PROFILE), or an instance or container role")


def _class_names(exc: BaseException) -> set[str]:
    return {cls.__name__ for cls in type(exc).__mro__}


def _causes(exc: BaseException) -> Iterator[BaseException]:
    """exc and everything it wraps: __cause__/__context__, and botocore's kwargs['error']."""
    seen: set[int] = set()
    pending: list[BaseException] = [exc]
    while pending:
        current = pending.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        wrapped = getattr(current, "kwargs", {}).get("error") if isinstance(getattr(current, "kwargs", None),
                                                                            dict) else None
        for nxt in (current.__cause__, current.__context__, wrapped, getattr(current, "reason", None)):
            if isinstance(nxt, BaseException):
                pending.append(nxt)


def _is_dns(exc: BaseException) -> bool:
    return any(isinstance(c, socket.gaierror) or "NameResolutionError" in _class_names(c) for c in _causes(exc))


def _is_tls(exc: BaseException) -> bool:
    return any(isinstance(c, ssl.SSLError) or "SSLError" in _class_names(c) for c in _causes(exc))


def _tls_reason(exc: BaseException) -> str:
    for cause in _causes(exc):
        if isinstance(cause, ssl.SSLError):
            return str(getattr(cause, "reason", None) or cause.__class__.__name__)
    return "handshake failed"


def _first_line(text: str, limit: int = 200) -> str:
    line = " ".join(text.split())
    return line if len(line) <= limit else line[: limit - 3] + "..."


def _server_clock_offset(meta: dict[str, Any]) -> float | None:
    """Seconds the server's Date header is ahead of this host's clock, or None without a usable header."""
    date = (meta.get("HTTPHeaders") or {}).get("date")
    if not date:
        return None
    try:
        server = parsedate_to_datetime(str(date))
    except (TypeError, ValueError):
        return None
    if server.tzinfo is None:
        return None
    return (server - datetime.now(UTC)).total_seconds()


def translate(exc: BaseException, action: str, *, endpoint: str, bucket: str,
              redact: Callable[[str], str] = str) -> StorageError:
    """The StorageError for a boto3/botocore/urllib3 exception raised while doing `action` (e.g. "list s3://b/p/").

    `endpoint` is the URL the client talks to, `redact` masks the credentials in use.
    """
    if isinstance(exc, StorageError):
        return exc
    if isinstance(exc, BackupError):
        # Ours, raised inside a boto3 call: a SIGTERM's RunCancelled from the signal handler, say. It is not the
        # store's failure and keeps its own code and exit status (130, not 4).
        raise exc
    names = _class_names(exc)
    response: Any = getattr(exc, "response", None)
    if "ClientError" in names and isinstance(response, dict):
        return _from_response(response, action, endpoint=endpoint, bucket=bucket, redact=redact)
    if names & _CREDENTIAL_NAMES:
        return StorageCredentialsError(f"cannot {action}: no usable S3 credentials were found; {_CHAIN_FIX}")
    if _is_tls(exc):
        return StorageTLSError(f"cannot {action}: TLS with {endpoint} failed ({redact(_tls_reason(exc))}); check "
                               "the endpoint's certificate (AWS_CA_BUNDLE for a private CA) or whether it speaks "
                               "https at all (OPENWATCH_BACKUP_S3_ENDPOINT_URL)")
    if _is_dns(exc):
        return StorageUnreachable(f"cannot {action}: the name of {endpoint} does not resolve (DNS); check "
                                  "OPENWATCH_BACKUP_S3_ENDPOINT_URL/OPENWATCH_BACKUP_S3_REGION and this host's DNS")
    if "IncompleteReadError" in names:
        return StorageUnreachable(f"cannot {action}: the connection to {endpoint} ended before the whole object "
                                  "arrived; try again")
    if "ReadTimeoutError" in names or "ConnectTimeoutError" in names or isinstance(exc, TimeoutError):
        return StorageUnreachable(f"cannot {action}: {endpoint} did not answer in time (timeout); check the "
                                  "network or try again later")
    if names & _CONNECTION_NAMES or isinstance(exc, ConnectionError | OSError):
        why = "refused" if any(isinstance(c, ConnectionRefusedError) for c in _causes(exc)) else "failed or was reset"
        return StorageUnreachable(f"cannot {action}: the connection to {endpoint} {why}; check that the endpoint "
                                  "is up and reachable (OPENWATCH_BACKUP_S3_ENDPOINT_URL)")
    return StorageError(f"cannot {action}: {type(exc).__name__}: {redact(_first_line(str(exc)))}")


def _from_response(response: dict[str, Any], action: str, *, endpoint: str, bucket: str,
                   redact: Callable[[str], str]) -> StorageError:
    error = response.get("Error") or {}
    meta = response.get("ResponseMetadata") or {}
    status = int(meta.get("HTTPStatusCode") or 0)
    code = str(error.get("Code") or status)
    attempts = int(meta.get("RetryAttempts") or 0) + 1
    said = redact(_first_line(str(error.get("Message") or "")))
    if code == "NoSuchBucket":
        return StorageBucketMissing(f"cannot {action}: bucket {bucket!r} does not exist at {endpoint} (NoSuchBucket); "
                                    "create it or fix OPENWATCH_BACKUP_S3_BUCKET")
    if code in ("NoSuchKey", "NoSuchUpload") or (code == "404" and status == 404):
        return StorageObjectMissing(f"cannot {action}: no such object ({code})")
    skew = _server_clock_offset(meta)
    if code == "RequestTimeTooSkewed" or (status == 403 and skew is not None and abs(skew) > MAX_SKEW_SECONDS):
        # A HEAD's 403 has no body to name the cause; the server's Date header still tells a wrong clock apart.
        measured = f"; the server's clock is {skew / 60:+.0f} min from ours" if skew is not None else ""
        return StorageClockSkew(f"cannot {action}: the server refused the request because this host's clock is more "
                                f"than 15 minutes off (RequestTimeTooSkewed{measured}); synchronise the clock (NTP)")
    if code in _CREDENTIAL_CODES:
        return StorageCredentialsError(f"cannot {action}: the server refused the credentials ({code}); check the "
                                       f"access key id and secret key, {_CHAIN_FIX}")
    if code in _REGION_CODES or status == 301:
        return StorageError(f"cannot {action}: bucket {bucket!r} is in another region ({code}); set "
                            "OPENWATCH_BACKUP_S3_REGION to the bucket's region")
    if code in ("AccessDenied", "AllAccessDisabled", "403") or status == 403:
        return StorageAccessDenied(f"cannot {action}: access denied ({code}); these credentials need s3:ListBucket, "
                                   "s3:GetObject, s3:PutObject, s3:DeleteObject and s3:AbortMultipartUpload on bucket "
                                   f"{bucket!r} (check its policy, Object Lock and the KMS key)")
    if status >= 500 or code in ("SlowDown", "ServiceUnavailable", "InternalError", "RequestTimeout"):
        return StorageUnreachable(f"cannot {action}: {endpoint} answered {status} {code} after {attempts} "
                                  "attempt(s); try again later")
    detail = f": {said}" if said else ""
    return StorageError(f"cannot {action}: the server answered {status} {code}{detail}")
