"""Keep the admin page's strict Content-Security-Policy inside OpenWatch.

OpenWatch's `security_headers_middleware` (backend/app/main.py) sets its own CSP on every response, overwriting
the page's: `script-src 'self' 'unsafe-inline'` in production and `'unsafe-inline' 'unsafe-eval'` in debug.
This ASGI middleware, added to OpenWatch's app *after* that one (so it runs outside it and sees its headers),
puts the page's policy back on the page's own responses and leaves every other response alone:

    from openwatch_backup.api.csp import KeepPageCSP
    app.add_middleware(KeepPageCSP)
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from openwatch_backup.api.page import _CSP as PAGE_CSP

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]
PAGE_PATH = "/api/system/backups/ui"  # where OpenWatch mounts the page (README, "Install into OpenWatch")
_HEADER = b"content-security-policy"


class KeepPageCSP:
    def __init__(self, app: ASGIApp, path: str = PAGE_PATH) -> None:
        self.app = app
        self.path = path.rstrip("/")

    def _ours(self, path: str) -> bool:
        return path == self.path or path.startswith(self.path + "/")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not self._ours(str(scope.get("path", ""))):
            await self.app(scope, receive, send)
            return

        async def send_with_our_policy(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = [(k, v) for k, v in message.get("headers", []) if k.lower() != _HEADER]
                message = {**message, "headers": [*headers, (_HEADER, PAGE_CSP.encode())]}
            await send(message)

        await self.app(scope, receive, send_with_our_policy)


__all__ = ["PAGE_CSP", "PAGE_PATH", "KeepPageCSP"]
