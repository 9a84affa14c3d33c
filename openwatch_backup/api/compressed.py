"""gzip for our routes' answers, whatever app the router is mounted in.

A router cannot add app middleware (OpenWatch's app owns its stack, and FastAPI rebuilds an included route's ASGI
app), so each of our routes compresses its own answer in its handler: a body of 500 bytes or more goes out
gzip-compressed when the request's Accept-Encoding allows it. Streamed answers (downloads: already compressed
dumps, sent with their Content-Length) are left alone. A host app's own GZipMiddleware sees Content-Encoding
already set and passes the answer through.
"""

from __future__ import annotations

import gzip
from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import Request, Response
from fastapi.responses import StreamingResponse

from openwatch_backup.api.errors import OneLineErrorsRoute

MINIMUM_SIZE = 500
_LEVEL = 6  # most of level 9's gain at a fraction of its time: these answers are polled every few seconds


def accepts_gzip(request: Request) -> bool:
    for part in request.headers.get("accept-encoding", "").lower().split(","):
        name, _, params = part.strip().partition(";")
        if name.strip() in ("gzip", "*") and params.replace(" ", "") not in ("q=0", "q=0.0", "q=0.00", "q=0.000"):
            return True
    return False


def compress(request: Request, response: Response) -> Response:
    if isinstance(response, StreamingResponse) or "content-encoding" in response.headers:
        return response
    body = bytes(response.body)
    vary = response.headers.get("vary")
    response.headers["vary"] = f"{vary}, Accept-Encoding" if vary else "Accept-Encoding"
    if len(body) < MINIMUM_SIZE or not accepts_gzip(request):
        return response
    response.body = gzip.compress(body, compresslevel=_LEVEL, mtime=0)
    response.headers["content-encoding"] = "gzip"
    response.headers["content-length"] = str(len(response.body))
    return response


class CompressedRoute(OneLineErrorsRoute):
    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def compressed(request: Request) -> Response:
            return compress(request, await handler(request))

        return compressed


__all__ = ["MINIMUM_SIZE", "CompressedRoute", "accepts_gzip"]
